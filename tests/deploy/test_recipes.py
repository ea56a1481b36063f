"""The deployment recipes in ``deploy/``, checked offline: Slurm and Kubernetes cannot run here.

The Kubernetes manifests parse and carry what ``kubectl apply`` needs (apiVersion, kind, a name,
containers with an image; selectors that match their pods; the names the study's job connects to
are the Services'). The Slurm launcher builds its real ``SLURMCluster`` job script through
dask-jobqueue without submitting anything.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
WORKLOADS = {"Deployment", "Job", "StatefulSet"}


def manifests() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def test_every_manifest_has_what_kubectl_needs():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    docs = manifests()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "Job", "Secret"}
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), doc
        if doc["kind"] in WORKLOADS:
            spec = pod_spec(doc)
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                assert container.get("name") and container.get("image"), container
                if container["image"].startswith("lstm-optuna"):  # the project's image: no default
                    assert container.get("command"), container
            labels = doc["spec"]["template"]["metadata"]["labels"]
            if doc["kind"] == "Deployment":
                selector = doc["spec"]["selector"]["matchLabels"]
                assert selector.items() <= labels.items(), doc["metadata"]["name"]
            if doc["kind"] == "Job":
                assert spec["restartPolicy"] in ("OnFailure", "Never")


def _services() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Service"}


def _pods() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] in WORKLOADS}


def test_services_select_pods_and_their_ports():
    pods = _pods()
    for name, service in _services().items():
        selected = [
            pod
            for pod in pods.values()
            if service["spec"]["selector"].items()
            <= pod["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, name
        ports = {
            p.get("name") for c in pod_spec(selected[0])["containers"] for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (name, port)


def test_the_study_job_reaches_the_scheduler_and_postgres_services():
    services, pods = _services(), _pods()
    (job,) = [p for p in pods.values() if p["kind"] == "Job"]
    command = pod_spec(job)["containers"][0]["command"]
    assert command[:4] == ["python", "-m", "optimize", "run"]
    cluster = command[command.index("--cluster") + 1]
    host, port = re.fullmatch(r"tcp://([\w-]+):(\d+)", cluster).groups()
    assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}
    storage = command[command.index("--storage") + 1]
    assert storage.startswith("postgresql+psycopg2://")
    db_host, db_port = re.search(r"@([\w-]+):(\d+)/", storage).groups()
    assert int(db_port) in {p["port"] for p in services[db_host]["spec"]["ports"]}
    assert int(command[command.index("--workers") + 1]) == pods["dask-worker"]["spec"]["replicas"]
    secret = next(d for d in manifests() if d["kind"] == "Secret")
    for var in re.findall(r"\$\((\w+)\)", storage):  # kubectl expands them from the Secret
        assert var in secret["stringData"]


def test_workers_run_one_single_thread_process_each():
    worker = pod_spec(_pods()["dask-worker"])["containers"][0]
    command = worker["command"]
    assert command[:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert command[command.index("--nthreads") + 1] == "1"
    assert command[command.index("--nworkers") + 1] == "1"
    env = {e["name"]: e["value"] for e in worker["env"]}
    assert env.items() >= _local_dask_settings().items()


def _local_dask_settings() -> dict[str, str]:
    """The Dask settings `--cluster local` gives its processes, as DASK_... variables."""
    from optimize.study.cluster.session import WORKER_CONFIG

    return {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
        for key, value in WORKER_CONFIG.items()
    }


def test_every_recipe_gives_its_workers_the_settings_of_cluster_local():
    settings = _local_dask_settings()
    assert "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL" in settings
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    for name, value in settings.items():
        assert re.search(rf"^\s+{name}={re.escape(value)}\b", dockerfile, flags=re.M), name
        assert f"export {name}={value}" in _launcher().WORKER_ENV


def test_the_image_copies_what_exists_and_installs_the_project_editable():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+)", dockerfile, flags=re.M)
    for source in copied:
        assert (REPO / source).exists(), source
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    tops = {p.split(".")[0] for p in packages["packages"]} | set(packages["package-dir"].values())
    assert tops <= set(copied), tops - set(copied)  # every installed package and shipped folder
    assert 'pip install "torch==2.13.0"' in dockerfile and "pip install -e ." in dockerfile


def _launcher():
    spec = importlib.util.spec_from_file_location(
        "slurm_launch", REPO / "deploy" / "slurm" / "launch.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_slurm_launcher_builds_its_job_script_without_submitting():
    pytest.importorskip("dask_jobqueue")
    launch = _launcher()
    args, run_args = launch.parse(
        ["--jobs", "3", "--queue", "cpu", "--account", "lab", "--gpus", "1", "--memory", "6GB",
         "--", "--storage", "postgresql+psycopg2://u@db/optuna", "--study-name", "big"]
    )  # fmt: skip
    assert args.jobs == 3 and run_args[-1] == "big"
    cluster = launch.make_cluster(args)
    try:
        script = cluster.job_script()
        assert not cluster.workers and not cluster.worker_spec  # nothing submitted
    finally:
        cluster.close()
    for line in ("#SBATCH -p cpu", "#SBATCH -A lab", "#SBATCH --gres=gpu:1", "--nthreads 1"):
        assert line in script, script
    assert f"cd {REPO}" in script
    for name, value in _local_dask_settings().items():
        assert f"{name}={value}" in script, name
    assert re.search(r"#SBATCH --mem=6G", script), script
    assert cluster.scheduler_address.split(":")[-1] in script  # workers dial this scheduler


def test_sbatch_script_runs_the_launcher():
    text = (REPO / "deploy" / "slurm" / "optimize.sbatch").read_text()
    assert text.startswith("#!/usr/bin/env bash") and "#SBATCH --time=" in text
    assert "deploy/slurm/launch.py" in text and "STORAGE:?" in text
