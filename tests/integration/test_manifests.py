"""The deployment manifests: least-privilege RBAC, a non-root, read-only container, and a config
that pprofd itself accepts."""

import os
import subprocess
import sys
import tempfile
import unittest

try:
    import yaml
except ImportError:  # Debian's python3-yaml lives with the system interpreter
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    raise

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

MANIFEST = h.SOURCE_DIR / "deploy" / "manifests" / "pprofd.yaml"


class ManifestTest(unittest.TestCase):
    def setUp(self):
        self.docs = {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text()) if d}

    def test_rbac_is_read_only_on_pods(self):
        rules = self.docs["ClusterRole"]["rules"]
        self.assertEqual(rules, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}])
        binding = self.docs["ClusterRoleBinding"]
        self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": "pprofd", "namespace": "observability"}])

    def test_container_runs_unprivileged(self):
        pod = self.docs["DaemonSet"]["spec"]["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
        container = pod["containers"][0]
        self.assertFalse(container["securityContext"]["allowPrivilegeEscalation"])
        self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
        self.assertEqual(container["securityContext"]["capabilities"]["drop"], ["ALL"])
        self.assertNotIn("hostNetwork", pod)
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz")

    def test_shipped_config_is_valid(self):
        config = self.docs["ConfigMap"]["data"]["pprofd.yaml"]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(config)
            f.flush()
            result = subprocess.run([h.PPROFD_BIN, "check-config", f"--config.file={f.name}"],
                                    capture_output=True, text=True, timeout=30,
                                    env=dict(os.environ, NODE_NAME="node-1"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("kubernetes discovery enabled", result.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
