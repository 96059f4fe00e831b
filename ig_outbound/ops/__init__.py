"""Operations tooling: the catalogue of metric names, the Grafana dashboard built from code."""
