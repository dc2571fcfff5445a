#!/usr/bin/env python3
"""Reads a YAML stream (e.g. `kubectl kustomize deploy/`) on stdin and writes its documents as
one JSON array on stdout, empty documents left out. The tests parse manifests with it, so the
crate needs no YAML parser. Needs PyYAML (Debian python3-yaml; pip's kubernetes-validate brings
it too)."""
import json
import sys

import yaml

docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]
json.dump(docs, sys.stdout)
