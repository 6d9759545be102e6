"""The benchmark tooling: bit snapshots, the workloads' profiles and the README's benchmark table."""
