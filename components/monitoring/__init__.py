"""Prometheus and Grafana (kube-prometheus-stack), what they scrape, the Models
dashboard, and prometheus-adapter for the HPAs that read metrics."""
