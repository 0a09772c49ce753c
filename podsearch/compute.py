"""Where the heavy stages run: in the stage's own process (`compute.engine: local`) or on a Ray cluster (`ray`).

generate_queries and the embed stages cut their work into items whose results do not depend on where they are
computed: a shard of episodes (seeded by its index), a run of encode batches (the same batches as the local engine).
With `ray`, the items go through Ray Data `map_batches` over a pool of actors, each of which builds its model once
(one generator or encoder per actor); results come back to the stage, which does with each what the local engine
does (writes the shard, places the vectors), so both engines write the same bytes and a cluster run resumes like a
local one.

Ray is imported here only, and only when the ray engine runs: the local engine and `search` never load it.
"""
from __future__ import annotations

import logging
import math
import pickle
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podsearch.config import from_section
from podsearch.errors import PodsearchError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
INSTALL = "pip install 'ray[data]==2.60.0'"
# Seconds to wait for a TCP answer from ray_address: ray.init itself retries an unreachable address for minutes.
CONNECT_TIMEOUT = 5.0


class ComputeError(PodsearchError):
    """A compute setting that cannot work, a cluster that cannot be reached, or a work item that failed on it;
    phrased for the person who has to fix it."""


@dataclass(frozen=True)
class ActorPool:
    """params.yaml compute.<stage>: the actors of one stage's pool. A stage without GPU work has no gpus_per_actor."""

    actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0


@dataclass(frozen=True)
class Compute:
    """params.yaml `compute`, as one stage uses it: the engine, the cluster, and the stage's actor pool
    (compute.<section>)."""

    engine: str = "local"
    ray_address: str | None = None
    section: str = ""
    actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any], section: str) -> Compute:
        """Every key is read and checked whatever the engine, so a bad cluster setting fails on a local run too."""
        engine, address = params["engine"], params["ray_address"]
        if engine not in ENGINES:
            raise ComputeError(f"params.yaml compute.engine: unknown engine {engine!r}; expected one of "
                               f"{', '.join(ENGINES)}")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ComputeError(f"params.yaml compute.ray_address: {address!r}; expected null (start a local cluster), "
                               "auto, host:port or ray://host:port")
        if not isinstance(params.get(section), Mapping):
            raise ComputeError(f"params.yaml compute.{section}: missing; expected actors and cpus_per_actor")
        pool = from_section(ActorPool, params[section], f"compute.{section}")
        for key, value in (("actors", pool.actors), ("cpus_per_actor", pool.cpus_per_actor)):
            if value <= 0:
                raise ComputeError(f"params.yaml compute.{section}.{key}: {value!r}; expected a number > 0")
        if pool.gpus_per_actor < 0:
            raise ComputeError(f"params.yaml compute.{section}.gpus_per_actor: {pool.gpus_per_actor!r}; expected >= 0")
        return cls(engine, address, section, pool.actors, pool.cpus_per_actor, pool.gpus_per_actor)

    @property
    def is_ray(self) -> bool:
        return self.engine == "ray"

    @property
    def device(self) -> str:
        """What an actor's torch models run on: Ray hands an actor GPUs only when it asks for some."""
        return "cuda" if self.gpus_per_actor > 0 else "cpu"

    @property
    def threads(self) -> int:
        """Threads for an actor's onnxruntime or BLAS: the CPUs it reserves, at least one."""
        return max(1, int(self.cpus_per_actor))


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data ships as the [data] extra
    except ImportError as exc:
        raise ComputeError(f"compute.engine: ray needs Ray Data ({exc}); install it with {INSTALL} "
                           "(requirements.txt), or set compute.engine: local") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail in seconds, with the fix, where ray.init would retry an unreachable head for minutes."""
    if address == "auto":
        return  # the cluster `ray start` left on this machine: Ray finds it itself and says so when there is none
    host_port = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ComputeError(f"params.yaml compute.ray_address: {address!r}; expected auto, host:port (the head's "
                           "GCS port, 6379 by default) or ray://host:port (Ray Client, 10001)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ComputeError(f"compute.ray_address {address}: unreachable ({exc}); start the cluster there with "
                           "`ray start --head`, or set compute.ray_address: null for a local cluster") from None


def connect(compute: Compute) -> dict[str, Any]:
    """Join compute.ray_address, or start a local cluster the size of the actor pool (`ray_address: null`);
    reuse the session when this process already has one. Returns where it runs (address, nodes, CPUs, GPUs).

    The driver's podsearch package travels with the job (`py_modules`), so every actor runs the code the driver
    runs, whatever is installed on the cluster's nodes.
    """
    ray = _import_ray()
    if compute.ray_address:
        _check_reachable(compute.ray_address)
    if not ray.is_initialized():
        runtime_env = {"py_modules": [str(Path(__file__).resolve().parent)]}
        try:
            if compute.ray_address:
                ray.init(address=compute.ray_address, runtime_env=runtime_env)
            else:
                # address="local": a new cluster even where RAY_ADDRESS names another one. Just big enough for the
                # pool, so it runs on a machine with fewer cores and takes no more of a shared one.
                ray.init(address="local", num_cpus=math.ceil(compute.actors * compute.cpus_per_actor),
                         include_dashboard=False, runtime_env=runtime_env)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = compute.ray_address or "a local cluster"
            raise ComputeError(f"compute.ray_address: cannot start or join {where}: {exc}") from None
    resources = ray.cluster_resources()
    info = {"address": ray.get_runtime_context().gcs_address, "nodes": len([n for n in ray.nodes() if n["Alive"]]),
            "cpus": resources.get("CPU", 0.0), "gpus": resources.get("GPU", 0.0)}
    log.info("Ray cluster at %s: %d node(s), %g CPU(s), %g GPU(s)", info["address"], info["nodes"], info["cpus"],
             info["gpus"])
    return info


def pool_size(compute: Compute, cpus: float, gpus: float) -> int:
    """Actors the cluster can hold now, at most compute.<section>.actors; an error when not even one fits."""
    fits = [compute.actors, math.floor(cpus / compute.cpus_per_actor)]
    if compute.gpus_per_actor:
        fits.append(math.floor(gpus / compute.gpus_per_actor))
    actors = min(fits)
    if actors < 1:
        raise ComputeError(
            f"the Ray cluster ({cpus:g} CPUs, {gpus:g} GPUs) cannot hold one actor of compute.{compute.section} "
            f"({compute.cpus_per_actor:g} CPUs, {compute.gpus_per_actor:g} GPUs); lower cpus_per_actor/"
            "gpus_per_actor or add nodes with `ray start --address=<head>`")
    if actors < compute.actors:
        log.warning("the Ray cluster holds %d of the %d actors compute.%s asks for; running %d", actors,
                    compute.actors, compute.section, actors)
    return actors


class _Actor:
    """One actor of the pool: builds its worker (the model) at its first item, not in the constructor, because Ray
    Data restarts an actor whose constructor fails, forever; an error is sent back as a result instead (its message,
    traceback and the exception itself), and the driver raises it."""

    SCHEMA = (("key", "int64"), ("result", "binary"), ("error", "string"), ("traceback", "string"),
              ("exception", "binary"))

    def __init__(self, make_worker: Callable[[], Callable[[Any], Any]]):
        self.make_worker, self.worker = make_worker, None

    def __call__(self, batch):
        import traceback

        import pyarrow as pa
        from ray import cloudpickle

        rows = []
        for key, item in zip(batch.column("key").to_pylist(), batch.column("item").to_pylist()):
            row = {"key": key, "result": None, "error": None, "traceback": None, "exception": None}
            try:
                if self.worker is None:
                    self.worker = self.make_worker()
                row["result"] = pickle.dumps(self.worker(pickle.loads(item)), protocol=5)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - anything: the driver reports it by name
                row.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
                try:
                    row["exception"] = cloudpickle.dumps(exc)
                except Exception:  # noqa: BLE001 - an exception that does not pickle still has its message
                    pass
            rows.append(row)
        return pa.Table.from_pylist(rows, schema=pa.schema([(name, getattr(pa, kind)()) for name, kind in self.SCHEMA]))


def map_on_actors(compute: Compute, items: Sequence[Any], make_worker: Callable[[], Callable[[Any], Any]], *,
                  what: str, labels: Sequence[str] | None = None) -> Iterator[tuple[int, Any]]:
    """(position, worker(items[position])) for every item, as each finishes (in no particular order), where each
    actor of the pool calls `make_worker()` once and its worker on every item it is given.

    Items and results are pickled (exact: strings and float32 arrays come back as they left); `make_worker` must be
    picklable (a class or functools.partial of one). The first failed item stops the run with a ComputeError naming
    it (`labels[position]`, default "task N of M"; the remote traceback is logged); results already yielded stay
    valid, so a caller that saves each one can resume. A session this process already has is reused as it is: its
    workers import podsearch from wherever that session put it.
    """
    if not items:
        return
    ray = _import_ray()
    from ray.data import ActorPoolStrategy

    info = connect(compute)
    actors = min(pool_size(compute, info["cpus"], info["gpus"]), len(items))  # an idle actor still loads a model
    log.info("%s: %d task(s) on %d Ray actor(s) x %g CPU(s)%s at %s", what, len(items), actors,
             compute.cpus_per_actor, f", {compute.gpus_per_actor:g} GPU(s)" if compute.gpus_per_actor else "",
             info["address"])
    rows = [{"key": key, "item": pickle.dumps(item, protocol=5)} for key, item in enumerate(items)]
    # One block per item: Ray Data hands blocks to actors, so each item is a unit of scheduling (and of progress).
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        _Actor, fn_constructor_args=(make_worker,), batch_size=1, batch_format="pyarrow",
        compute=ActorPoolStrategy(size=actors), num_cpus=compute.cpus_per_actor,
        num_gpus=compute.gpus_per_actor or None)
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                if row["error"] is not None:
                    label = labels[row["key"]] if labels else f"task {row['key'] + 1} of {len(items)}"
                    log.error("%s: %s failed on the Ray cluster:\n%s", what, label, row["traceback"])
                    raise ComputeError(f"{what}: {label} failed on the Ray cluster: {row['error']}") from _cause(row)
                yield row["key"], pickle.loads(row["result"])
    except ray.exceptions.RayError as exc:  # a node or actor lost, the object store full: not the items' fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ComputeError(f"{what}: the Ray cluster failed ({first}); rerun the stage to resume") from exc


def _cause(row: dict[str, Any]) -> BaseException | None:
    try:
        return pickle.loads(row["exception"]) if row["exception"] is not None else None
    except Exception:  # noqa: BLE001 - its class may exist on the cluster only; the message is in the error
        return None
