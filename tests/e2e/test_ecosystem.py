# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection in the Ansible ecosystem: an AWX-style job through ansible-runner, the AWX
inventory source, the execution environment build context and galaxy-importer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SUB, Runner, requests_of  # pylint: disable=import-error

ansible_runner = pytest.importorskip("ansible_runner", reason="ansible-runner is installed on the newest stack only")

CLIENT, SECRET, TENANT = "awx-client", "awx-secret-value", "tenant-awx"
# a plugin type galaxy-importer asks ansible-doc for -> its directory under plugins/ (the others: its name)
IMPORTER_DIRS = {"module": "modules"}


def fleet():
    return {"caches": [{"name": "cache-%02d" % i, "resource_group": "rg-hpc", "location": "eastus",
                        "tags": {"maintenance_window": "sunday_02"} if i < 2 else {},
                        "flush": {"duration": 1, "retry_after": 1}} for i in range(3)],
            "clients": {CLIENT: SECRET}}


def awx_env(emulator):
    """Exactly what AWX's Microsoft Azure Resource Manager credential injects, and nothing for auth besides."""
    return {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_CLIENT_ID": CLIENT, "AZURE_SECRET": SECRET,
            "AZURE_TENANT": TENANT, "AZURE_CLOUD_ENVIRONMENT": emulator.url}


@pytest.fixture
def awx_runner(tmp_path, tls_emulator):
    runner = Runner(str(tmp_path), tls_emulator)
    for key in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_SUBSCRIPTION_ID", "AZURE_CLOUD_ENVIRONMENT"):
        runner.env.pop(key, None)
    return runner


def test_awx_job_through_ansible_runner(awx_runner, tls_emulator, tmp_path):
    tls_emulator.load(fleet())
    private = tmp_path / "private"
    shutil.copytree(os.path.join(ROOT, "awx"), private / "project")
    (private / "inventory").mkdir()
    shutil.copy(os.path.join(ROOT, "awx", "inventory.hpc_cache.yml"), private / "inventory" / "awx.hpc_cache.yml")
    envvars = dict(awx_env(tls_emulator),
                   REQUESTS_CA_BUNDLE=tls_emulator.ca_bundle,  # the emulator's own CA; Azure needs none
                   ANSIBLE_COLLECTIONS_PATH=os.environ["ANSIBLE_COLLECTIONS_PATH"], HOME=str(tmp_path),
                   PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    result = ansible_runner.run(private_data_dir=str(private), playbook="maintenance.yml", envvars=envvars,
                                limit="window_sunday_02", forks=5, quiet=True, timeout=300,
                                # progress lines under ansible-runner, whose HOME is not the passwd home
                                extravars={"cache_maintenance_poll_interval": 1, "cache_maintenance_progress_interval": 2,
                                           "flush_timeout": 120})
    stdout = result.stdout.read()
    assert result.status == "successful", stdout[-3000:]
    assert [c["flushes"] for c in tls_emulator.state()["caches"]] == [1, 1, 0]
    assert "cache-00: flushed" in stdout and "cache-01: flushed" in stdout
    assert any(e["kind"] == "token" and e["path"].endswith("/tenant-awx/oauth2/v2.0/token")
               for e in tls_emulator.log())
    assert SECRET not in stdout


def test_awx_inventory_source_export(awx_runner, tls_emulator):
    tls_emulator.load(fleet())
    env = dict(awx_env(tls_emulator), REQUESTS_CA_BUNDLE=tls_emulator.ca_bundle)
    out = awx_runner.command("ansible-inventory", ["-i", os.path.join(ROOT, "awx", "inventory.hpc_cache.yml"),
                                                   "--list", "--export"], env=env)
    assert out.returncode == 0, out.stdout
    data = json.loads(out.stdout)
    assert sorted(data["hpc_caches"]["hosts"]) == ["cache-00", "cache-01", "cache-02"]
    assert sorted(data["window_sunday_02"]["hosts"]) == ["cache-00", "cache-01"]
    assert "location_eastus" in data and "health_Healthy" in data
    assert requests_of(tls_emulator, "flush") == []


def test_execution_environment_build_context(tmp_path):
    context = tmp_path / "context"
    builder = os.path.join(os.path.dirname(sys.executable), "ansible-builder")
    out = subprocess.run([builder, "create", "-f", os.path.join(ROOT, "execution-environment.yml"),
                          "-c", str(context)], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    python_deps = (context / "_build" / "requirements.txt").read_text()
    assert "azure-identity" in python_deps and "requests" in python_deps
    assert "azure_hpc.cache" in (context / "_build" / "requirements.yml").read_text()
    assert (context / "Containerfile").exists() or (context / "Dockerfile").exists()
    # What ansible-builder finds in the installed collection itself (meta/execution-environment.yml).
    intro = subprocess.run([builder, "introspect", "--sanitize", os.environ["ANSIBLE_COLLECTIONS_PATH"]],
                           capture_output=True, text=True, timeout=120, check=False)
    assert intro.returncode == 0, intro.stdout + intro.stderr
    assert "azure-identity" in intro.stdout and "requests" in intro.stdout and "azure_hpc.cache" in intro.stdout


def test_galaxy_importer_accepts_the_tarball(tmp_path):
    dist = os.path.join(ROOT, ".build", "dist")
    tarball = [f for f in os.listdir(dist) if f.endswith(".tar.gz")]
    assert len(tarball) == 1
    config = tmp_path / "galaxy-importer.cfg"
    # ansible-test runs in make test already (scripts/sanity), and so does ansible-lint with the production profile
    # (make lint) on the repository, of which the tarball is a part (build_ignore): here the importer's own checks
    # (the manifest, the docs of every plugin, the tarball's layout), no container.
    config.write_text("[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = False\n"
                      "RUN_ANSIBLE_DOC = True\nCHECK_REQUIRED_TAGS = False\nLOG_LEVEL_MAIN = INFO\n")
    # The importer lists every plugin type it knows with an ansible-doc run each (fourteen processes): it is told
    # the types of which the collection has a plugins/ directory, so every plugin's docs are still loaded, in three.
    known = pytest.importorskip("galaxy_importer.constants").ANSIBLE_DOC_SUPPORTED_TYPES
    types = [kind for kind in known if os.path.isdir(os.path.join(ROOT, "plugins", IMPORTER_DIRS.get(kind, kind)))]
    assert {"module", "inventory", "filter"} <= set(types), types
    importer = ("import sys, galaxy_importer.constants, galaxy_importer.main; "
                "galaxy_importer.constants.ANSIBLE_DOC_SUPPORTED_TYPES = sys.argv[1].split(','); "
                "sys.exit(galaxy_importer.main.main(sys.argv[2:]))")
    out = subprocess.run([sys.executable, "-c", importer, ",".join(types), os.path.join(dist, tarball[0])],
                         env=dict(os.environ, GALAXY_IMPORTER_CONFIG=str(config)), capture_output=True, text=True,
                         timeout=600, check=False, cwd=str(tmp_path))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "ERROR" not in text, text[-4000:]
    # every module, inventory and filter plugin's docs were loaded through ansible-doc
    with open(tmp_path / "importer_result.json", encoding="utf-8") as handle:
        contents = json.load(handle)["docs_blob"]["contents"]
    documented = {(c["content_type"], c["content_name"]) for c in contents if c.get("doc_strings")}
    for kind in ("module", "inventory", "filter"):
        for name in os.listdir(os.path.join(ROOT, "plugins", IMPORTER_DIRS.get(kind, kind))):
            if name.endswith(".py") and name != "__init__.py":
                assert (kind, name[:-3]) in documented, (kind, name, sorted(documented))
