"""The container image and the KubeRay manifests, checked statically (no Docker daemon, no
Kubernetes here): they parse, the RayService deploys exactly serve_config.yaml, its pods have
what that config's application needs (GPU, volumes at the configured paths, keys, metrics), and
the Dockerfile installs what pyproject.toml names with torch pinned as the Makefile pins it."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement

from serve_app.config import Settings
from serve_app.security import refuse_unauthenticated_exposure

ROOT = Path(__file__).resolve().parents[1]
KUBERAY = ROOT / "deploy" / "kuberay"
SERVE_CONFIG = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def manifests() -> dict[str, dict]:
    """Every document under deploy/kuberay by kind."""
    found: dict[str, dict] = {}
    for path in sorted(KUBERAY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc and {"apiVersion", "kind", "metadata"} <= doc.keys(), path
            if doc["kind"] == "PersistentVolumeClaim":
                found[f"pvc/{doc['metadata']['name']}"] = doc
            else:
                assert doc["kind"] not in found, f"two {doc['kind']}s"
                found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    return manifests()


@pytest.fixture(scope="module")
def cluster(docs) -> dict:
    return docs["RayService"]["spec"]["rayClusterConfig"]


def groups(cluster: dict) -> list[tuple[str, dict]]:
    return [("head", cluster["headGroupSpec"])] + [
        (group["groupName"], group) for group in cluster["workerGroupSpecs"]
    ]


def container(group: dict) -> dict:
    [ray_container] = group["template"]["spec"]["containers"]
    return ray_container


def mounted(group: dict, path: str) -> tuple[dict, dict] | None:
    """(volumeMount, volume) of the mount that holds `path` in this group's pod, if any."""
    spec = group["template"]["spec"]
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    for mount in container(group).get("volumeMounts", []):
        if PurePosixPath(path).is_relative_to(mount["mountPath"]):
            return mount, volumes[mount["name"]]
    return None


def app_deployment(name: str) -> dict:
    [app] = SERVE_CONFIG["applications"]
    return next(entry for entry in app["deployments"] if entry["name"] == name)


def start_resources(group: dict) -> dict:
    """The custom resources a group's `ray start` declares (KubeRay's doubly quoted JSON)."""
    raw = group["rayStartParams"].get("resources", '"{}"')
    return json.loads(raw.strip().strip('"').replace('\\"', '"'))


# --- the RayService -------------------------------------------------------------------------


def test_every_manifest_parses_and_the_kinds_are_there(docs):
    assert {"RayService", "PodMonitor"} <= docs.keys()
    assert docs["RayService"]["apiVersion"] == "ray.io/v1"
    assert {"pvc/video-script-serve-models", "pvc/video-script-serve-tasks"} <= docs.keys()


def test_the_rayservice_deploys_serve_config_yaml_as_it_is(docs):
    embedded = yaml.safe_load(docs["RayService"]["spec"]["serveConfigV2"])
    [app] = SERVE_CONFIG["applications"]
    assert embedded["applications"] == [app], "run: python deploy/kuberay/render.py"
    assert embedded == SERVE_CONFIG, "run: python deploy/kuberay/render.py"


def test_the_renderer_agrees_with_the_manifest_on_disk():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(KUBERAY / "render.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_chatglm_replicas_have_a_gpu_worker_group_sized_for_their_autoscaling(cluster):
    chatglm = app_deployment("ChatGLM")
    gpus_per_replica = chatglm["ray_actor_options"]["num_gpus"]
    gpu_groups = [
        group
        for _, group in groups(cluster)
        if "nvidia.com/gpu" in container(group)["resources"].get("limits", {})
    ]
    assert gpu_groups, "no worker group asks for nvidia.com/gpu"
    [gpu] = gpu_groups
    assert gpu["groupName"] != "head"
    assert container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == 1 == gpus_per_replica
    # one replica per GPU node: the group can grow to the deployment's largest replica count
    assert gpu["maxReplicas"] >= chatglm["autoscaling_config"]["max_replicas"]
    assert gpu["minReplicas"] >= chatglm["autoscaling_config"]["min_replicas"]
    cpus = float(container(gpu)["resources"]["limits"]["cpu"])
    assert cpus >= chatglm["ray_actor_options"]["num_cpus"]
    assert ":cuda" in container(gpu)["image"]
    assert cluster["enableInTreeAutoscaling"] is True


def test_every_pod_that_may_run_chatglm_or_ingress_sees_the_weights_read_only(cluster):
    model_path = SERVE_CONFIG["applications"][0]["args"]["model_path"]
    for name, group in groups(cluster):
        found = mounted(group, model_path)
        assert found, f"{name}: nothing mounted at {model_path}"
        mount, volume = found
        assert mount.get("readOnly") is True, name
        assert volume["persistentVolumeClaim"]["claimName"] == "video-script-serve-models"


def test_the_task_store_is_pinned_to_the_one_pod_with_the_task_db_volume(cluster, docs):
    store = app_deployment("TaskStore")
    assert store["num_replicas"] == 1
    [(resource, amount)] = store["ray_actor_options"]["resources"].items()
    db_path = SERVE_CONFIG["applications"][0]["args"]["task_db_path"]
    holders = [name for name, group in groups(cluster) if resource in start_resources(group)]
    assert holders == ["head"], f"the {resource!r} resource must be on exactly the head"
    head = cluster["headGroupSpec"]
    assert start_resources(head)[resource] >= amount
    mount, volume = mounted(head, db_path)
    assert not mount.get("readOnly")
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert docs[f"pvc/{claim}"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    for name, group in groups(cluster):
        if name != "head":
            assert mounted(group, db_path) is None, f"{name} mounts the task DB"


def test_every_pod_gets_the_api_keys_from_the_secret_and_the_app_then_starts(cluster, tmp_path):
    for name, group in groups(cluster):
        env = {item["name"]: item for item in container(group)["env"]}
        key_file = env["VSS_API_KEY_FILE"]["value"]
        mount, volume = mounted(group, key_file)
        assert mount.get("readOnly") is True, name
        assert volume["secret"]["secretName"] == "video-script-serve-keys", name
        [item] = volume["secret"]["items"]
        assert PurePosixPath(mount["mountPath"]) / item["path"] == PurePosixPath(key_file)
        admin = env["VSS_ADMIN_API_KEYS"]["valueFrom"]["secretKeyRef"]
        assert admin["name"] == "video-script-serve-keys", name

    # serve_config.yaml listens on 0.0.0.0: alone it refuses to start, with the pod's key file
    # (here a local stand-in) it starts.
    args = SERVE_CONFIG["applications"][0]["args"]
    host = SERVE_CONFIG["http_options"]["host"]
    keys = tmp_path / "api-keys"
    keys.write_text("a-key\n")
    refuse_unauthenticated_exposure(Settings(**args, api_key_file=keys), host)


def test_prometheus_scrapes_every_pod_on_rays_metrics_port(cluster, docs):
    monitor = docs["PodMonitor"]["spec"]
    [endpoint] = monitor["podMetricsEndpoints"]
    for name, group in groups(cluster):
        template = group["template"]["metadata"]
        port = group["rayStartParams"]["metrics-export-port"]
        assert template["annotations"]["prometheus.io/scrape"] == "true", name
        assert template["annotations"]["prometheus.io/port"] == port, name
        ports = {p["name"]: p["containerPort"] for p in container(group)["ports"]}
        assert ports[endpoint["port"]] == int(port), name
        selector = monitor["selector"]["matchLabels"]
        assert selector.items() <= template["labels"].items(), name


# --- the Dockerfile -------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def build_args() -> dict[str, str]:
    return dict(
        rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest
    )


def run_commands() -> list[str]:
    return [rest for word, rest in instructions() if word == "RUN"]


def test_torch_is_pinned_as_the_makefile_pins_it_cpu_by_default():
    makefile = (ROOT / "Makefile").read_text()
    [pinned] = re.findall(r"^TORCH_VERSION \?= (\S+)$", makefile, re.MULTILINE)
    args = build_args()
    assert args["TORCH_VERSION"] == pinned
    assert args["VARIANT"] == "cpu"
    [torch_install] = [cmd for cmd in run_commands() if "torch==" in cmd]
    assert '"torch==${TORCH_VERSION}"' in torch_install
    assert (
        "--index-url" in torch_install and "whl/cpu" in torch_install and "cuda)" in torch_install
    )
    # torch comes first: the project's install finds it there and pulls no CUDA wheels
    project_install = next(i for i, cmd in enumerate(run_commands()) if " . " in f"{cmd} ")
    assert run_commands().index(torch_install) < project_install
    [torch_requirement] = [
        Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch")
    ]
    assert torch_requirement.specifier.contains(pinned)


def test_the_image_installs_the_project_with_every_dependency_pyproject_names():
    [install] = [cmd for cmd in run_commands() if "pip install" in cmd and " . " in f"{cmd} "]
    words = shlex.split(install.split("&&")[0])
    assert "." in words and "--no-deps" not in words
    names = {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]}
    assert "bitsandbytes" in names  # int8/nf4, CUDA kernels in the cuda variant
    # Ray is pinned to the RayService's version, inside the range pyproject allows
    ray_version = build_args()["RAY_VERSION"]
    [ray_requirement] = [
        Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("ray")
    ]
    assert "ray[serve]==${RAY_VERSION}" in words
    assert ray_requirement.specifier.contains(ray_version)
    rayservice = yaml.safe_load((KUBERAY / "rayservice.yaml").read_text())
    assert rayservice["spec"]["rayClusterConfig"]["rayVersion"] == ray_version
    # the import check after the install names the heavy ones
    assert "import torch, transformers, bitsandbytes, ray, serve_app.app" in install


def copied_sources() -> list[str]:
    sources = []
    for word, rest in instructions():
        if word == "COPY":
            *paths, _dest = rest.split()
            sources += [p for p in paths if not p.startswith("--")]
    return sources


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule for plain patterns: a path is out when it or a folder above it matches;
    `**/` matches any depth; a later `!pattern` takes it back in."""
    excluded = False
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        patterns = (
            [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [pattern]
        )
        for candidate in candidates:
            names = [candidate] + ([candidate.split("/")[-1]] if pattern.startswith("**/") else [])
            if any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns):
                excluded = not negate
    return excluded


def test_the_image_gets_every_package_and_its_data_and_no_local_state():
    sources = {s.rstrip("/") for s in copied_sources()}
    assert "pyproject.toml" in sources
    packages = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in packages:
        assert package.rstrip("*") in sources, f"{package} is not copied into the image"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignore_excludes(source), f".dockerignore drops {source}"
    for package in PYPROJECT["tool"]["setuptools"]["package-data"]:
        data = ROOT / package.replace(".", "/") / "data"
        for file in data.rglob("*.yaml"):
            assert not dockerignore_excludes(str(file.relative_to(ROOT))), file
    for local in (".venv", "models/tiny", "data/tasks.db", ".git", "bench_results/x.json"):
        assert dockerignore_excludes(local), f".dockerignore lets {local} into the context"
    assert dockerignore_excludes("serve_app/__pycache__/app.cpython-311.pyc")


def test_the_default_command_runs_a_config_the_image_holds():
    [cmd] = [rest for word, rest in instructions() if word == "CMD"]
    argv = json.loads(cmd)
    assert argv[:2] == ["serve", "run"]
    assert argv[2] in copied_sources()
    config = yaml.safe_load((ROOT / argv[2]).read_text())
    # loopback inside the container: no keys needed, reachable with --network host
    refuse_unauthenticated_exposure(
        Settings(**config["applications"][0]["args"]), config["http_options"]["host"]
    )
