"""NVIDIA's dcgm-exporter, the source of the GPU metrics (pure).

Installed with monitoring on and any `gpu: nvidia` node, into the monitoring
namespace, after kube-prometheus-stack (whose CRDs hold the ServiceMonitor) and
after the device plugin (every node Ready, the nvidia runtime in place).

Every value was checked against the chart at the pinned tag (NVIDIA/dcgm-exporter
`deployment/`: values.yaml, templates/daemonset.yaml, service-monitor.yaml);
tests/test_gpu_metrics.py renders it when its source is at hand:
- the DaemonSet runs on GPU nodes only: `nodeSelector` on the GPU label, and
  `tolerations` replaced (a list is not merged) by the GPU taint's alone; the
  chart's own default tolerates the control plane, where no GPU is allowed here;
- `runtimeClassName: nvidia`: the image sets NVIDIA_VISIBLE_DEVICES=all
  (docker/Dockerfile), and the nvidia runtime mounts the driver's libraries and
  the devices for it;
- its ServiceMonitor (the chart's, on for a Prometheus Operator) carries the
  stack's `release` label, which a Prometheus that keeps the chart's selector
  default would need (ours selects every ServiceMonitor, components/monitoring/values.py);
- `honorLabels: true`: the exporter labels each GPU's series with the pod that
  holds the GPU (`pod`, `namespace`, `container`; internal/pkg/transformation/
  const.go and kubernetes.go, from the kubelet's pod-resources socket the chart
  mounts). Without it Prometheus keeps its own target labels under those names
  (the exporter's own pod) and renames the model's to `exported_pod`,
  `exported_namespace`: the dashboard and prometheus-adapter's rule could not
  match them to the model's pods the way every other metric here is matched.
  A GPU no pod holds keeps the exporter's target labels.
"""
from __future__ import annotations

from components.gpu.config import RUNTIME_CLASS
from components.gpu.pods import gpu_node_selector, gpu_tolerations
from components.monitoring import values as v

RELEASE = "dcgm-exporter"
NAMESPACE = v.NAMESPACE
# The chart's fullname is the release name when that contains the chart's name:
# the DaemonSet, Service and ServiceMonitor are all called this.
FULLNAME = RELEASE
METRICS_PORT = 9400  # the chart's service.port, the container's port `metrics`
# The exporter reads DCGM every 30 s (--collect-interval, 30000 ms by default,
# pkg/cmd/app.go): a scrape every 15 s sees each value at least once.
COLLECT_INTERVAL_SECONDS = 30
CHART_TIMEOUT_SECONDS = 600  # DCGM's image is large; a slow link takes minutes


def dcgm_exporter_values() -> dict:
    return {
        "nodeSelector": gpu_node_selector(),
        "tolerations": gpu_tolerations(),
        "runtimeClassName": RUNTIME_CLASS,
        "serviceMonitor": {
            "enabled": True,
            "interval": v.SCRAPE_INTERVAL,
            "honorLabels": True,
            "additionalLabels": {"release": v.RELEASE},
        },
    }
