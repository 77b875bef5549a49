"""Projects on the cluster, and their members' kubeconfigs.

    after every node is Ready:
      per project:  Namespace -> ResourceQuota, LimitRange, Role -> a RoleBinding per member
      once:         ValidatingAdmissionPolicies + bindings (what a member's models may carry)
      per member:   kubeconfig issued on the control plane   [after the member's bindings
                                                              and the admission policies]
"""
from __future__ import annotations

import datetime
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.access import admission
from components.access import member_certificates as certificates
from components.access.config import AccessConfig, Project, utc_today
from components.access.namespace_owner import PROJECTS_NAME, PROJECTS_TYPE, moved_from_models
from components.access.project_objects import (
    ROLE_NAME, ROLE_RULES, binding_name, limit_range_spec, namespace_labels, quota_hard)
from components.cluster.commands import node_command
from components.serving.context import ClusterHandle, k8s_options
from components.stack_config import KubernetesSettings

QUOTA_NAME = "kserve-project"
LIMIT_RANGE_NAME = "kserve-project-defaults"
RBAC_API_GROUP = "rbac.authorization.k8s.io"


class Projects(pulumi.ComponentResource):
    """Namespaces with quotas, limit ranges, a member Role and RoleBindings, and a
    kubeconfig per member (a secret output map).

    `namespaces` (by name) are the project namespaces: the serving layer puts the
    models and runtimes of a project there instead of creating the namespace.
    """

    def __init__(self, cluster: ClusterHandle, access: AccessConfig,
                 kubernetes: KubernetesSettings, today: Optional[datetime.date] = None,
                 opts: Optional[pulumi.ResourceOptions] = None,
                 storage_accounts: Optional[Mapping[str, Sequence[str]]] = None):
        """`storage_accounts`: by namespace, the storage-secret service accounts a
        member's model may run as (components/storage/secrets.py)."""
        super().__init__(PROJECTS_TYPE, PROJECTS_NAME, None, opts)
        admission_objects = self._admission(cluster, storage_accounts or {})
        self.namespaces: dict[str, k8s.core.v1.Namespace] = {}
        bindings: dict[str, list[pulumi.Resource]] = {}
        for project in access.projects:
            for member, binding in self._project(cluster, project).items():
                bindings.setdefault(member, []).append(binding)

        settings = access.settings
        period = certificates.renewal_period(settings, today or utc_today())
        renews_from = certificates.period_start(settings, period + 1).isoformat()
        self.kubeconfigs: dict[str, pulumi.Output] = {}
        self.members: dict[str, dict] = {}
        for member, projects in access.members.items():
            issued = node_command(
                f"member-kubeconfig-{member}", cluster.control_plane_connection,
                "issue-member-kubeconfig.sh",
                {"MEMBER": member, "ORGANIZATIONS": certificates.organizations(projects),
                 "VALIDITY": certificates.validity_period(settings)},
                stdin=certificates.cluster_configuration(kubernetes),
                secret_stdout=True,
                # Issued again when the member's projects change (ORGANIZATIONS), in a new
                # renewal period, or when the control plane (its CA) is built anew.
                triggers=[cluster.teardown.id, f"renewal period {period}"],
                opts=pulumi.ResourceOptions(parent=self, deleted_with=cluster.teardown,
                                            depends_on=[cluster.ready, *bindings[member],
                                                        *admission_objects]))
            self.kubeconfigs[member] = pulumi.Output.secret(issued.stdout)
            self.members[member] = {"projects": list(projects), "renewsFrom": renews_from}
        self.register_outputs({"projects": [p.name for p in access.projects],
                               "members": self.members})

    def _admission(self, cluster: ClusterHandle,
                   storage_accounts: Mapping[str, Sequence[str]]) -> list[pulumi.Resource]:
        """The policies on what a member's InferenceServices and ServingRuntimes may
        carry (components/access/admission.py), each with its binding."""
        made: list[pulumi.Resource] = []
        for policy in admission.policies(storage_accounts):
            name = policy["metadata"]["name"]
            made.append(k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"admission-{name}", metadata=policy["metadata"], spec=policy["spec"],
                opts=k8s_options(self, cluster, depends_on=[cluster.ready])))
            bound = admission.binding(name)
            made.append(k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"admission-binding-{name}", metadata=bound["metadata"], spec=bound["spec"],
                opts=k8s_options(self, cluster, depends_on=[made[-1]])))
        return made

    def _project(self, cluster: ClusterHandle, project: Project) -> dict[str, pulumi.Resource]:
        """The project's objects; returns its RoleBindings by member."""
        name = project.name
        namespace = k8s.core.v1.Namespace(
            f"namespace-{name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=namespace_labels(project)),
            opts=k8s_options(self, cluster, depends_on=[cluster.ready],
                             aliases=moved_from_models()))
        self.namespaces[name] = namespace
        after_namespace = [namespace]
        hard = quota_hard(project.quota)
        if hard:
            k8s.core.v1.ResourceQuota(
                f"quota-{name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=QUOTA_NAME, namespace=name),
                spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=hard),
                opts=k8s_options(self, cluster, depends_on=after_namespace))
        k8s.core.v1.LimitRange(
            f"limits-{name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=LIMIT_RANGE_NAME, namespace=name),
            spec=limit_range_spec(project.quota),
            opts=k8s_options(self, cluster, depends_on=after_namespace))
        role = k8s.rbac.v1.Role(
            f"role-{name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ROLE_NAME, namespace=name),
            rules=ROLE_RULES,
            opts=k8s_options(self, cluster, depends_on=after_namespace))
        return {member: k8s.rbac.v1.RoleBinding(
            f"binding-{name}-{member}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=binding_name(member), namespace=name),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_API_GROUP, kind="Role", name=ROLE_NAME),
            subjects=[k8s.rbac.v1.SubjectArgs(api_group=RBAC_API_GROUP, kind="User", name=member)],
            opts=k8s_options(self, cluster, depends_on=[namespace, role]))
            for member in project.members}
