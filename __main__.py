"""kserve-cluster: bare Ubuntu 22.04 machines to a KServe model-serving cluster.

Thin on purpose: read and validate the stack config, build the layers, export.
"""
import pulumi

from components.access.admission import storage_accounts
from components.access.project_removal import removal_gate
from components.access.projects import Projects
from components.cluster.cluster import Cluster
from components.cluster.control_plane_change import change_gate
from components.cluster.connection import private_key_output
from components.gpu.device_plugin import GpuDevicePlugin
from components.monitoring.monitoring import Monitoring, admin_password
from components.previous_outputs import PreviousOutputs
from components.pulumi_config import load_stack_config
from components.serving.context import ClusterHandle
from components.serving.serving import Serving
from components.stack_config import ConfigError
from components.upgrade.layer_run import LAYERS_OUTPUT, layer_run
from components.storage.storage import Storage

try:
    # Every problem in the stack file at once, before any resource is registered.
    config, secret_key = load_stack_config()
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None
# The last successful run's outputs, read through one StackReference to this stack.
previous = PreviousOutputs()
# A train move walks each layer through upstream's intermediate releases, one step per
# run; the nodes move when the layers allow (components/upgrade/layer_run.py).
config, layer_plan = layer_run(config, previous)

# Refused before any node is touched, from the last run's outputs: a project dropped
# while its models stay would open them (components/access/project_removal.py); a
# change of the control planes that can lose quorum or leaves an even count that is
# no one-step shrink (components/cluster/control_plane_change.py).
cluster = Cluster(config, private_key_output(config.ssh, secret_key),
                  gates=[removal_gate(config.access, config.serving.models, previous),
                         change_gate(previous, [n.name for n in config.control_planes])])
handle = ClusterHandle(provider=cluster.provider, teardown=cluster.teardown, ready=cluster.ready,
                       control_plane_connection=cluster.control_plane.connection,
                       control_plane_address=config.control_plane.address)
storage = Storage(handle, config.storage) if config.storage.enabled else None
projects = Projects(handle, config.access, config.kubernetes,
                    storage_accounts=storage_accounts(config.storage.secrets)) \
    if config.access.projects else None
gpu = GpuDevicePlugin(handle) if config.gpu.enabled else None
serving = Serving(handle, config.serving, storage=storage, access=config.access,
                  namespaces=projects.namespaces if projects else None,
                  gpu_ready=gpu.ready if gpu else None,
                  monitoring=config.monitoring.enabled)
monitoring = None
if config.monitoring.enabled:
    monitoring = Monitoring(handle, config.monitoring, config.serving, serving.workloads.services,
                            admin_password(), gpu_ready=gpu.ready if gpu else None)

pulumi.export("kubeconfig", cluster.kubeconfig)
# What the cluster runs once this run is done: the next run plans its layer steps from it.
pulumi.export(LAYERS_OUTPUT, layer_plan.recorded())
pulumi.export("apiEndpoint", cluster.api_endpoint)
pulumi.export("nodes", cluster.nodes)
pulumi.export("backup", cluster.backup)
pulumi.export("ingressAddress", serving.ingress_address)
pulumi.export("ingressPort", serving.ingress_port)
pulumi.export("ingressHttpsPort", serving.https_port)
if serving.ingress_ca_certificate is not None:
    # The stack's CA (public): clients check the gateway's certificate against it.
    pulumi.export("ingressCaCertificate", serving.ingress_ca_certificate)
pulumi.export("models", serving.models)
if serving.models:
    first = next(iter(serving.models.values()))
    pulumi.export("curl", first["curl"])
if serving.smoke_prediction is not None:
    pulumi.export("smokePrediction", serving.smoke_prediction)
if monitoring is not None:
    pulumi.export("grafanaUrl", monitoring.grafana_url)
    pulumi.export("grafanaAdminPassword", monitoring.admin_password)
# The project namespaces: the next run reads them back to refuse a removal that would
# open models (components/access/project_removal.py).
pulumi.export("projects", [p.namespace for p in config.access.projects])
if projects is not None:
    pulumi.export("members", projects.members)
    pulumi.export("memberKubeconfigs", projects.kubeconfigs)  # each one a secret
if serving.tokens:
    pulumi.export("tokens", serving.tokens)  # each one a secret
