"""Stack config of projects, members and tokens: `projects` and `access` (pure).

    projects:
      - name: team-a                      # the project's namespace
        quota: {cpu: "8", memory: 32Gi, gpu: 1, pods: 20, storage: 100Gi,
                ephemeralStorage: 50Gi, claims: 10}
        members: [alice, bob]             # Kubernetes user names (client certificate CN)
        tokens: [{name: ci, expires: "2026-12-31"}]
    access:                               # optional, stack-wide
      certificateValidityDays: 90
      renewBeforeDays: 30
      signingKeyGeneration: 1
      maxTokenDays: 365

Validated together with the rest of the stack config, every problem at once.
The cross-checks against the models (a model in a project's namespace, its
resources against the quota, who can call it) live here too, called from
`components/stack_config.py` with one line.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Optional

from components.namespaces import ReservedNamespaces, check_namespace
from components.quantity import is_byte_amount, parse_quantity
from components.problems import (
    DNS1123_LABEL, DNS1123_RULE, Problems, check_int, check_list, check_mapping, close_match,
    item_key)
from components.serving.config import Model, ServingConfig

PROJECT_KEYS = {"name", "quota", "members", "tokens"}
QUOTA_KEYS = {"cpu", "memory", "gpu", "pods", "storage", "ephemeralStorage", "claims"}
TOKEN_KEYS = {"name", "expires"}
ACCESS_KEYS = {"certificateValidityDays", "renewBeforeDays", "signingKeyGeneration",
               "maxTokenDays"}

DEFAULT_VALIDITY_DAYS = 90
# kubeadm warns above its own default of one year: a stolen certificate cannot be
# revoked, so this project refuses more.
MAX_VALIDITY_DAYS = 365
# A token works until its day unless the stack file changes: its life is bounded.
DEFAULT_MAX_TOKEN_DAYS = 365
MAX_MAX_TOKEN_DAYS = 3650

# Member names become the CN of a client certificate, a RoleBinding subject and
# part of resource names: lower-case letters, digits, '-' and '.'.
USER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")
USER_NAME_RULE = ("a user name: lower-case letters, digits, '-' and '.', at most 63, "
                  "starting and ending with a letter or digit")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# How alike a model's namespace and a project's name must be to count as a typo
# (difflib's ratio: team-m1/team-ml is 0.86, kserve-test/team-ml 0.22).
TYPO_CUTOFF = 0.8


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


@dataclass(frozen=True)
class Quota:
    cpu: Optional[str] = None       # requests.cpu
    memory: Optional[str] = None    # requests.memory
    gpu: Optional[int] = None       # requests.nvidia.com/gpu
    pods: Optional[int] = None
    storage: Optional[str] = None   # requests.storage (PersistentVolumeClaims)
    ephemeral_storage: Optional[str] = None  # requests.ephemeral-storage
    claims: Optional[int] = None    # persistentvolumeclaims (a count)


@dataclass(frozen=True)
class Token:
    name: str
    expires: datetime.date  # the token stops working at 00:00 UTC of this day


@dataclass(frozen=True)
class Project:
    name: str
    quota: Quota = Quota()
    members: tuple[str, ...] = ()
    tokens: tuple[Token, ...] = ()

    @property
    def namespace(self) -> str:
        return self.name


@dataclass(frozen=True)
class AccessSettings:
    certificate_validity_days: int = DEFAULT_VALIDITY_DAYS
    renew_before_days: int = DEFAULT_VALIDITY_DAYS // 3
    signing_key_generation: int = 1
    max_token_days: int = DEFAULT_MAX_TOKEN_DAYS


@dataclass(frozen=True)
class AccessConfig:
    projects: tuple[Project, ...] = ()
    settings: AccessSettings = field(default_factory=AccessSettings)

    def project_of(self, namespace: str) -> Optional[Project]:
        return next((p for p in self.projects if p.namespace == namespace), None)

    @property
    def members(self) -> dict[str, tuple[str, ...]]:
        """Each member and the projects they are in (sorted), members sorted by name."""
        found: dict[str, set[str]] = {}
        for project in self.projects:
            for member in project.members:
                found.setdefault(member, set()).add(project.name)
        return {member: tuple(sorted(found[member])) for member in sorted(found)}

    @property
    def has_tokens(self) -> bool:
        return any(p.tokens for p in self.projects)

    def protects(self, model: Model) -> bool:
        """A model in a project's namespace needs a token, unless it is public."""
        return self.project_of(model.namespace) is not None and not model.public

    def caller_token(self, model: Model) -> Optional[tuple[Project, Token]]:
        """The token the cluster's own smoke prediction sends to `model` (the
        project's first), or None when it needs none."""
        project = self.project_of(model.namespace)
        if project is None or model.public or not project.tokens:
            return None
        return project, project.tokens[0]

    def can_be_called(self, model: Model) -> bool:
        """False for a protected model whose project has no token: nobody can call it."""
        return not self.protects(model) or self.caller_token(model) is not None


# ---------------------------------------------------------------- parsing

def _shown(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date) else value


def _expiry(problems: Problems, key: str, value: Any, today: datetime.date,
            max_days: int) -> tuple[Optional[datetime.date], bool]:
    """(the day, whether the token is current). A past day is warned about and the
    token dropped (None, True): it is not issued, and the gateway stops accepting it."""
    example = (today + datetime.timedelta(days=min(90, max_days))).isoformat()
    if value is None:
        problems.required(key, f"give the day the token stops working, e.g. '{example}'.")
        return None, False
    day = None
    if isinstance(value, datetime.datetime):
        day = None  # a time of day is not what this key means
    elif isinstance(value, datetime.date):
        day = value
    elif isinstance(value, str) and _DATE.match(value.strip()):
        try:
            day = datetime.date.fromisoformat(value.strip())
        except ValueError:
            day = None
    if day is None:
        problems.add(key, _shown(value), "not a date written YYYY-MM-DD.",
                     f"write the day the token stops working, e.g. '{example}' (quoted).")
        return None, False
    if day <= today:
        problems.warn(key, day.isoformat(),
                      f"the token's day has passed (today is {today.isoformat()} UTC; a token "
                      "stops working at 00:00 UTC of its expiry day): it is dropped, not issued, "
                      "and the gateway no longer accepts it.",
                      f"remove it from the stack file, or give a later day, e.g. '{example}', "
                      "to issue a new token (the old one stays refused).")
        return None, True
    days = (day - today).days
    if days > max_days:
        latest = (today + datetime.timedelta(days=max_days)).isoformat()
        problems.add(key, day.isoformat(),
                     f"{days} days from today ({today.isoformat()} UTC), more than "
                     f"access.maxTokenDays ({max_days}): a token works until its day unless the "
                     "stack file changes, so its life is bounded.",
                     f"give a day up to '{latest}', or raise access.maxTokenDays "
                     f"(at most {MAX_MAX_TOKEN_DAYS}).")
        return None, False
    return day, True


_FIELD = {"ephemeralStorage": "ephemeral_storage"}


def _quota(problems: Problems, key: str, raw: Any) -> Quota:
    quota = check_mapping(problems, key, raw, "give {cpu: '8', memory: 32Gi, gpu: 1, pods: 20, "
                                              "storage: 100Gi, ephemeralStorage: 50Gi, claims: 10}; "
                                              "every key is optional.")
    problems.unknown_keys(key, quota, QUOTA_KEYS)
    values: dict[str, Any] = {}
    for name, example in (("cpu", "'8' or 8000m"), ("memory", "32Gi"), ("storage", "100Gi"),
                          ("ephemeralStorage", "50Gi")):
        value = quota.get(name)
        if value is None:
            continue
        if parse_quantity(value) is None:
            problems.add(f"{key}.{name}", value, "not a Kubernetes quantity.",
                         f"write a non-negative quantity, e.g. {example}.")
        elif name == "cpu" and is_byte_amount(value):
            problems.add(f"{key}.cpu", value, "a byte amount, not CPU cores.",
                         f"write cores, e.g. {example} (memory goes in quota.memory).")
        else:
            values[_FIELD.get(name, name)] = str(value).strip()
    for name, what in (("gpu", "GPUs (requests.nvidia.com/gpu) are whole devices"),
                       ("pods", "pods are counted"),
                       ("claims", "PersistentVolumeClaims are counted")):
        value = quota.get(name)
        if value is None:
            continue
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        number = check_int(problems, f"{key}.{name}", value, -1, 0, 100000,
                           f"give a whole number ({what}), e.g. 2.")
        if number >= 0:
            values[name] = number
    return Quota(**values)


def _members(problems: Problems, key: str, raw: Any) -> tuple[str, ...]:
    members: list[str] = []
    for j, member in enumerate(check_list(problems, key, raw,
                                          "list user names, e.g. [alice, bob].")):
        member_key = f"{key}[{j}]"
        if not isinstance(member, str) or not USER_NAME.match(member):
            problems.add(member_key, member, f"not a valid member name ({USER_NAME_RULE}).",
                         "use the person's short user name, e.g. 'alice' or 'alice.smith' "
                         "(not an e-mail address).")
        elif member.startswith(("kubernetes-", "kube-")):
            problems.add(member_key, member, "names starting with kubernetes- or kube- are "
                         "reserved for Kubernetes' own identities.", "use the person's user name.")
        elif member in members:
            problems.add(member_key, member, "listed twice in this project.", "list it once.")
        else:
            members.append(member)
    return tuple(members)


def _tokens(problems: Problems, key: str, raw: Any, today: datetime.date,
            max_days: int) -> tuple[Token, ...]:
    tokens: list[Token] = []
    seen: set[str] = set()
    for j, item in enumerate(check_list(problems, key, raw,
                                        "list tokens, e.g. [{name: ci, expires: '2026-12-31'}].")):
        token_key = item_key(key, j, item)
        if not isinstance(item, dict):
            problems.add(token_key, item, "must be an object.",
                         "give {name: ci, expires: 'YYYY-MM-DD'}.")
            continue
        problems.unknown_keys(token_key, item, TOKEN_KEYS)
        name = item.get("name")
        if name is None:
            problems.required(f"{token_key}.name", "name the client, e.g. 'ci'.")
        elif not isinstance(name, str) or not DNS1123_LABEL.match(name):
            problems.add(f"{token_key}.name", name, f"not a valid token name ({DNS1123_RULE}).",
                         "rename it, e.g. 'ci' or 'web-app'.")
            name = None
        elif name in seen:
            problems.add(f"{token_key}.name", name, "duplicates another token of this project.",
                         "give every token of a project its own name.")
            name = None
        expires, current = _expiry(problems, f"{token_key}.expires", item.get("expires"), today,
                                   max_days)
        if isinstance(name, str) and current:
            seen.add(name)  # a dropped token still holds its name
            if expires is not None:
                tokens.append(Token(name, expires))
    return tuple(tokens)


def _projects(problems: Problems, raw: Any, today: datetime.date,
              reserved: ReservedNamespaces, max_token_days: int) -> list[Project]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add("projects", raw, "must be a list of projects.",
                     "write projects as a YAML list of {name, quota, members, tokens}.")
        return []
    projects: list[Project] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(raw):
        key = item_key("projects", i, item)
        if not isinstance(item, dict):
            problems.add(key, item, "must be an object.", "give {name, quota, members, tokens}.")
            continue
        problems.unknown_keys(key, item, PROJECT_KEYS)
        name = item.get("name")
        if name is None:
            problems.required(f"{key}.name", "name the project (its namespace), e.g. 'team-a'.")
            name = ""
        elif not isinstance(name, str) or not DNS1123_LABEL.match(name):
            problems.add(f"{key}.name", name, f"not a valid project name ({DNS1123_RULE}); "
                         "it is the project's namespace.", "rename it, e.g. 'team-a'.")
            name = ""
        elif not check_namespace(problems, f"{key}.name", name, reserved, "project"):
            name = ""
        elif name in seen:
            problems.add(f"{key}.name", name, f"duplicates {seen[name]}: one namespace, one project.",
                         "rename one of them, or merge their members and tokens.")
            name = ""
        else:
            seen[name] = key
        project = Project(
            name=name,
            quota=_quota(problems, f"{key}.quota", item.get("quota")),
            members=_members(problems, f"{key}.members", item.get("members")),
            tokens=_tokens(problems, f"{key}.tokens", item.get("tokens"), today, max_token_days))
        if name:
            projects.append(project)
    return projects


def _settings(problems: Problems, raw: Any) -> AccessSettings:
    access = check_mapping(problems, "access", raw, "see the README's `access` section.")
    problems.unknown_keys("access", access, ACCESS_KEYS)
    validity = check_int(problems, "access.certificateValidityDays",
                         access.get("certificateValidityDays"), DEFAULT_VALIDITY_DAYS,
                         2, MAX_VALIDITY_DAYS,
                         f"give the days a member's client certificate is valid, 2 to "
                         f"{MAX_VALIDITY_DAYS}, e.g. {DEFAULT_VALIDITY_DAYS} (shorter limits how long a "
                         "lost kubeconfig can be used).")
    renew = check_int(problems, "access.renewBeforeDays", access.get("renewBeforeDays"),
                      max(1, validity // 3), 1, validity - 1,
                      f"give how many days before the end of a certificate `pulumi up` issues "
                      f"the next one, 1 to {validity - 1} (less than certificateValidityDays), "
                      f"e.g. {max(1, validity // 3)}.")
    generation = check_int(problems, "access.signingKeyGeneration",
                           access.get("signingKeyGeneration"), 1, 1, 10**6,
                           "give a whole number from 1; raise it by one to replace the token "
                           "signing key (every token changes).")
    max_token_days = check_int(problems, "access.maxTokenDays", access.get("maxTokenDays"),
                               DEFAULT_MAX_TOKEN_DAYS, 1, MAX_MAX_TOKEN_DAYS,
                               f"give the most days a token may be issued for, 1 to "
                               f"{MAX_MAX_TOKEN_DAYS}, e.g. {DEFAULT_MAX_TOKEN_DAYS}.")
    return AccessSettings(validity, renew, generation, max_token_days)


# ---------------------------------------------------------------- cross-checks with the models

def _sum(values: list[Optional[Fraction]]) -> Fraction:
    return sum((v for v in values if v is not None), Fraction(0))


def _listed_tokens(raw: Any) -> set[str]:
    """Projects whose entry lists tokens, refused ones included: a refused token is
    reported on its own, so "lists no tokens" would only mislead."""
    return {item.get("name") for item in (raw if isinstance(raw, list) else [])
            if isinstance(item, dict) and isinstance(item.get("name"), str)
            and isinstance(item.get("tokens"), list) and item["tokens"]}


def _warn_typo(problems: Problems, key: str, model: Model, projects: list[Project]) -> bool:
    """A model outside every project, in a namespace spelt like one: it is served
    without a token, which the user most likely did not mean. True if warned."""
    guess = close_match(model.namespace, [p.namespace for p in projects], TYPO_CUTOFF)
    if guess is None:
        return False
    problems.warn(f"{key}.namespace", model.namespace,
                  "not a project's namespace, so the model is served to anyone who reaches "
                  f"the gateway, without a token; did you mean project {guess}?",
                  f"write namespace: {guess} to serve it with the project's tokens; if it is "
                  "meant to be open, give it a namespace less like a project's name.")
    return True


def _warn_idle_tokens(problems: Problems, project: Project, models: list[Model]) -> None:
    """Tokens only open models of their project that are not public: none, nothing to open."""
    if project.tokens and all(m.public for m in models):
        problems.warn(f"projects ({project.name}).tokens", [t.name for t in project.tokens],
                      f"no model in namespace {project.namespace} needs a token (none, or only "
                      "public ones), so the project's tokens open nothing.",
                      f"put the model the tokens are for in namespace {project.namespace}, "
                      "or remove the tokens.")


def _check_models(problems: Problems, projects: list[Project], serving: ServingConfig,
                  listed_tokens: set[str]) -> None:
    by_namespace = {p.namespace: p for p in projects}
    in_project: dict[str, list[Model]] = {}
    for i, model in enumerate(serving.models):
        key = f"models[{i}] ({model.name})"
        project = by_namespace.get(model.namespace)
        if project is None:
            if _warn_typo(problems, key, model, projects):
                continue  # (it says what `public` would: open anyway)
            if model.public:
                problems.warn(f"{key}.public", True,
                              f"namespace {model.namespace} is not a project's, so the model is "
                              "open to anyone who reaches the gateway anyway.",
                              "remove `public`, or move the model into a project's namespace.")
            continue
        in_project.setdefault(project.name, []).append(model)
        for resource, limit in (("cpu", project.quota.cpu), ("memory", project.quota.memory)):
            wanted = getattr(model, resource)
            if limit is not None and (parse_quantity(wanted) or 0) > parse_quantity(limit):
                problems.add(f"{key}.resources.{resource}", wanted,
                             f"more than the whole {resource} quota of project {project.name} "
                             f"({limit}): the model's pods would never be admitted.",
                             f"lower the model's {resource}, or raise "
                             f"projects ({project.name}).quota.{resource}.")
        if project.quota.gpu is not None and model.gpu > project.quota.gpu:
            problems.add(f"{key}.resources.gpu", model.gpu,
                         f"more than the whole GPU quota of project {project.name} "
                         f"({project.quota.gpu}, requests.nvidia.com/gpu): the model's pods "
                         "would never be admitted.",
                         f"lower the model's gpu, or raise projects ({project.name}).quota.gpu.")
        if not model.public and not project.tokens and project.name not in listed_tokens:
            problems.warn(key, model.key,
                          f"the model is in project {project.name}, which lists no tokens, and is "
                          "not public: nobody can call it through the gateway.",
                          f"add a token to project {project.name} "
                          "(tokens: [{name: ci, expires: 'YYYY-MM-DD'}]), or set public: true.")
    for project in projects:
        models = in_project.get(project.name, [])
        _warn_idle_tokens(problems, project, models)
        for resource, limit in (("cpu", project.quota.cpu), ("memory", project.quota.memory)):
            if limit is None or not models:
                continue
            # A canary runs beside the previous revision: two sets of pods.
            total = _sum([parse_quantity(getattr(m, resource)) * (2 if m.canary else 1)
                          for m in models if parse_quantity(getattr(m, resource)) is not None])
            if total > parse_quantity(limit):
                problems.warn(f"projects ({project.name}).quota.{resource}", limit,
                              f"the project's models ask for more {resource} together "
                              "(a canary counts twice) than the quota: some pods will stay "
                              "unscheduled (exceeded quota).",
                              f"raise the quota, or lower the models' {resource}.")


def parse_access_config(problems: Problems, projects: Any, access: Any, serving: ServingConfig,
                        today: Optional[datetime.date] = None,
                        reserved: ReservedNamespaces = ReservedNamespaces()) -> AccessConfig:
    """`projects` and `access` from the stack config, checked against the models.

    `today` (UTC) decides which token expiries are in the past (those tokens are
    dropped, with a warning) or too far ahead; tests pass it.
    `reserved`: the namespaces the cluster's layers own, refused as projects.
    """
    today = today or utc_today()
    settings = _settings(problems, access)
    parsed = _projects(problems, projects, today, reserved, settings.max_token_days)
    _check_names_against_hosts(problems, projects, serving.ingress_domain)
    _check_models(problems, parsed, serving, _listed_tokens(projects))
    return AccessConfig(projects=tuple(parsed), settings=settings)


def host_suffix_clashes(name: str, domain: str) -> Optional[str]:
    """Why a project called `name` would cover other namespaces' hosts, or None.

    A project's token policy covers `*.<name>.<domain>`, `*.<name>`, `*.<name>.svc`
    and `*.<name>.svc.cluster.local` (components/access/ingress_policies.py). Istio
    matches a leading `*` as a suffix, so a name that is itself the end of other
    hosts would put every other namespace's models behind this project's token.
    """
    if name == "svc":
        return "`*.svc` would match every namespace's `<model>.<namespace>.svc` host"
    if name == "local":
        return "`*.local` would match every `*.svc.cluster.local` host"
    if domain and name == domain.rsplit(".", 1)[-1]:
        return f"`*.{name}` would match every model host under {domain}"
    return None


def _check_names_against_hosts(problems: Problems, projects: Any, domain: str) -> None:
    for index, item in enumerate(projects if isinstance(projects, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        why = host_suffix_clashes(name, domain) if isinstance(name, str) else None
        if why:
            problems.add(f"{item_key('projects', index, item)}.name", name,
                         f"the project's token policy would cover other namespaces' hosts: {why}.",
                         "give the project another name.")
