"""Data-parallel training with TensorFlow's own ``tf.distribute``.

``siamese-train ... --distribute mirrored`` trains under
:class:`tf.distribute.MirroredStrategy` over this host's GPUs (or, with
``--cpu-replicas N`` on a host without one, over ``N`` logical CPU devices: what the tests
use); ``--distribute multi-worker`` under :class:`tf.distribute.MultiWorkerMirroredStrategy`
across the processes (or hosts) that the standard ``TF_CONFIG`` environment variable names.

What a distributed run does (see :func:`start`):

- the model, its optimizer and every trainer built from its layers are made inside the
  strategy's scope, so each weight is one mirrored variable;
- Keras's ``fit`` splits each global batch (``--batch-size``) across the replicas, averages
  each replica's loss over the *global* batch and sums the gradients: a step is the step one
  device takes on the whole batch (to float tolerance), batches of any size included only
  when they split evenly (the last batch of an epoch may not);
- the in-batch-negative losses (:mod:`siamese.losses`) gather the encodings of every
  replica (:func:`siamese.losses.gather_replicas`), so each anchor is scored against the whole global
  batch, as on one device;
- the image task's *unique* trainer (each distinct image of a batch embedded once) takes
  inputs of different lengths (the distinct images and the pairs' positions among them),
  which cannot be split across replicas: a distributed image run trains through the pair
  model instead and says so;
- only the chief (worker 0, or the task of type ``chief``) writes the run folder; the other
  workers write into a private temporary folder that is removed at the end.

Where no GPU is found and ``--cpu-replicas`` is not given, ``mirrored`` has one replica and
says so. The logical CPU devices must be set before TensorFlow starts its runtime, so
:func:`start` is called before any model or tensor is made.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from siamese.errors import ConfigError, EngineError

logger = logging.getLogger(__name__)

#: The names ``--distribute`` takes.
STRATEGIES = ("mirrored", "multi-worker")
#: Seconds a multi-worker run waits for every peer to answer before it gives up.
PEER_TIMEOUT = 120.0
#: Environment variable that changes :data:`PEER_TIMEOUT`.
PEER_TIMEOUT_ENV = "SIAMESE_PEER_TIMEOUT"


@dataclass(frozen=True)
class Cluster:
    """What ``TF_CONFIG`` says: every task's address by type, and this process's task."""

    tasks: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def is_chief(self) -> bool:
        """The chief writes the run: the ``chief`` task, or worker 0 where there is none."""
        if "chief" in self.tasks:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def own_address(self) -> str:
        return self.tasks[self.task_type][self.task_index]

    def peers(self) -> list[str]:
        """The addresses of every other task."""
        own = (self.task_type, self.task_index)
        return [
            address
            for kind, addresses in self.tasks.items()
            for i, address in enumerate(addresses)
            if (kind, i) != own
        ]


def read_cluster(text: str | None = None) -> Cluster:
    """The cluster in ``TF_CONFIG`` (or ``text``), checked.

    Raises:
        ConfigError: ``TF_CONFIG`` is missing or malformed (one line saying what is wrong).
    """
    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text:
        raise ConfigError(
            "--distribute multi-worker needs TF_CONFIG, e.g. "
            '\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\''
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ConfigError('TF_CONFIG needs a "cluster" object: {"worker": ["host:port", ...]}')
    tasks: dict[str, list[str]] = {}
    for kind, addresses in config["cluster"].items():
        if kind not in ("chief", "worker"):
            raise ConfigError(f'TF_CONFIG cluster: task type {kind!r} is not "chief" or "worker"')
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(f"TF_CONFIG cluster: {kind!r} must be a non-empty list of host:port")
        for address in addresses:
            _host_port(address)
        tasks[kind] = list(addresses)
    if len(tasks.get("chief", [])) > 1:
        raise ConfigError("TF_CONFIG cluster: at most one chief")
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in tasks:
        raise ConfigError(f'TF_CONFIG needs "task": {{"type": one of {sorted(tasks)}, "index": N}}')
    index = task.get("index", 0)
    count = len(tasks[task["type"]])
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ConfigError(f"TF_CONFIG task index {index!r} is not one of the {count} {task['type']} tasks")
    return Cluster(tasks, task["type"], index)


def _host_port(address: Any) -> tuple[str, int]:
    if not isinstance(address, str) or ":" not in address:
        raise ConfigError(f"TF_CONFIG cluster: {address!r} is not host:port")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"TF_CONFIG cluster: {address!r} is not host:port")
    return host.strip("[]"), int(port)


def rendezvous(cluster: Cluster, timeout: float) -> None:
    """Return once every other task of ``cluster`` answers on its address, answering on
    this task's own address meanwhile.

    TensorFlow's multi-worker start waits for every task to register, in C++ that holds the
    interpreter and that neither a timeout nor a signal ends; so the tasks first meet here,
    where the wait is bounded. Each listens on its own port (the one TensorFlow takes next)
    and connects to every peer's until all have answered.

    Raises:
        ConfigError: This task's port is taken.
        EngineError: A peer did not answer within ``timeout`` seconds.
    """
    _, port = _host_port(cluster.own_address)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", port))
    except OSError as exc:
        listener.close()
        raise ConfigError(
            f"multi-worker: this task's address {cluster.own_address} is not free ({exc})"
        ) from None
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                connection.close()
            except OSError:  # the timeout: look at ``stop`` again
                continue

    answering = threading.Thread(target=answer, daemon=True)
    answering.start()
    deadline = time.monotonic() + timeout
    try:
        waiting = cluster.peers()
        while waiting:
            address = waiting[0]
            try:
                with socket.create_connection(_host_port(address), timeout=2.0):
                    waiting.pop(0)
                    continue
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise EngineError(
                    f"multi-worker: the cluster did not form within {timeout:.0f} s (no answer from "
                    f"{', '.join(waiting)}); start every worker named in TF_CONFIG "
                    f"(or raise {PEER_TIMEOUT_ENV})"
                )
            time.sleep(0.2)
    finally:
        stop.set()
        answering.join()
        listener.close()


@dataclass(frozen=True)
class Distribution:
    """A started strategy: what the run needs to know about it."""

    name: str
    strategy: Any
    is_chief: bool = True

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    def scope(self) -> contextlib.AbstractContextManager:
        return self.strategy.scope()


def start(name: str, *, cpu_replicas: int | None = None) -> Distribution:
    """Start the strategy ``name`` (one of :data:`STRATEGIES`), before any model is made.

    Args:
        name: ``"mirrored"`` or ``"multi-worker"``.
        cpu_replicas: For ``mirrored`` on a host without GPUs: split the CPU into this many
            logical devices, one replica each.

    Raises:
        ConfigError: An unknown name, a malformed ``TF_CONFIG``, or logical devices asked
            for after TensorFlow has started.
        EngineError: A multi-worker peer did not answer within :data:`PEER_TIMEOUT` seconds
            (:func:`rendezvous`).
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ConfigError(f"--distribute {name!r}: choose one of {', '.join(STRATEGIES)}")
    if cpu_replicas is not None and (cpu_replicas < 1 or name != "mirrored"):
        raise ConfigError("--cpu-replicas is a positive count, for --distribute mirrored")
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU") and cpu_replicas:  # (listing logical devices
            # would start the runtime, after which the CPU can no longer be split)
            raise ConfigError("--cpu-replicas is for hosts without a GPU: this one has GPUs")
        if cpu_replicas:
            _split_cpu(tf, cpu_replicas)
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        else:
            devices = [device.name for device in tf.config.list_logical_devices("GPU")] or ["/cpu:0"]
        strategy = tf.distribute.MirroredStrategy(devices)
        if strategy.num_replicas_in_sync == 1:
            logger.warning(
                "--distribute mirrored: one device, so one replica "
                "(no GPU here; --cpu-replicas N splits the CPU)"
            )
        logger.info("distributed training: mirrored over %d replicas (%s)", len(devices), ", ".join(devices))
        return Distribution(name, strategy)
    cluster = read_cluster()
    timeout = _peer_timeout()
    rendezvous(cluster, timeout)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # returns once every task has joined
    logger.info(
        "distributed training: multi-worker, %s %d of %s, %d replicas in all%s",
        cluster.task_type,
        cluster.task_index,
        json.dumps(cluster.tasks),
        strategy.num_replicas_in_sync,
        " (the chief: it writes the run)" if cluster.is_chief else "",
    )
    return Distribution(name, strategy, is_chief=cluster.is_chief)


def _peer_timeout() -> float:
    text = os.environ.get(PEER_TIMEOUT_ENV)
    if text is None:
        return PEER_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{PEER_TIMEOUT_ENV} must be a positive number of seconds, not {text!r}")
    return value


def _split_cpu(tf: Any, count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise ConfigError(
                f"--cpu-replicas {count}: TensorFlow has already started in this process with "
                f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s); start a new process"
            ) from None
