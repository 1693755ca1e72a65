"""payment: a fake card processor in two versions (SERVICE_VERSION=v1|v2) from one codebase."""
