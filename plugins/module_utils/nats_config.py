"""NATS mesh: subjects, per-node users and permissions, the server config and agent config.

Seed 000 names six shared subjects (``mesh.node.announce.v1`` ...). A subject that every node
may publish on cannot stop node A from announcing itself as node B, so the fleet scopes them:

* node X publishes only on ``<seed subject>.<X's token>`` (``mesh.node.announce.v1.gpu-a``);
* everyone subscribes with the wildcard ``<seed subject>.>`` (or ``mesh.>``);
* the payload still carries ``node_id`` exactly as seed 000 shows it.

The seed subject names stay the prefix, so a listener on ``mesh.node.announce.v1.>`` sees every
announce. The NATS server enforces the scoping with per-user publish permissions; a node that
publishes on another node's subject gets ``Permissions Violation`` and nobody receives it.

Seed 000's listeners subscribe to the exact subject (``mesh.node.announce.v1``). nats-server
cannot map ``mesh.node.announce.v1.*`` onto it (a mapping destination must use every wildcard:
2.9.10 refuses the config), so a **relay** on the hub does it: its own user, the only one that may
publish on the exact seed subjects, subscribes to ``<seed subject>.*``, keeps a message only when
the payload's ``node_id`` is the node whose token the subject carries (``relay_verdict`` in the
agent script), and republishes the payload unchanged on ``<seed subject>``. No client may publish on
an exact seed subject (``build_server_config`` refuses such a client), so what arrives there was
checked by the relay.

Pure functions, no I/O. Passwords are hashed with bcrypt (nats-server accepts ``$2a$/$2b$``
hashes) using a salt derived from the user and password, so the same vault password gives the
same file and reruns change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ANNOUNCE = "mesh.node.announce.v1"
OFFLINE = "mesh.node.offline.v1"
WORK_AVAILABLE = "mesh.work.available.v1"
WORK_CLAIMED = "mesh.work.claimed.v1"
WORK_COMPLETED = "mesh.work.completed.v1"
GPU_STATUS = "mesh.gpu.status.v1"
SEED_SUBJECTS = (ANNOUNCE, OFFLINE, WORK_AVAILABLE, WORK_CLAIMED, WORK_COMPLETED, GPU_STATUS)
NODE_PUBLISHES = SEED_SUBJECTS  # a node may offer work, claim, complete, announce, report: all on its own token
INBOX = "_INBOX.>"  # request/reply answers
RELAY_SUBJECTS = SEED_SUBJECTS  # republished on the exact seed subject by the hub's relay
RELAY_USER = "pmoves-mesh-relay"
BCRYPT_COST = 11  # nats-server's own default for `nats server passwd`
_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_-]")
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_STD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class MeshConfigError(ValueError):
    """Inputs that would give a broken or insecure mesh (message says what to fix)."""


def subject_token(node_id: str) -> str:
    """A node id as one subject token: dots, spaces, ``*`` and ``>`` become ``_``.

    ``pmoves-5090.lan`` -> ``pmoves-5090_lan``. The payload keeps the real ``node_id``.
    """
    token = _TOKEN_BAD.sub("_", node_id.strip())
    if not token.strip("_"):
        raise MeshConfigError(f"node id {node_id!r} gives an empty NATS subject token")
    return token


def node_tokens(node_ids: Iterable[str]) -> dict[str, str]:
    """Each node's subject token mapped to its node id; two nodes with one token are an error."""
    tokens: dict[str, str] = {}
    for node_id in sorted(node_ids):
        token = subject_token(node_id)
        if token in tokens:
            raise MeshConfigError(f"nodes {tokens[token]} and {node_id} map to the same subject token {token}")
        tokens[token] = node_id
    return tokens


def node_subjects(node_id: str) -> dict[str, str]:
    """The subjects node ``node_id`` publishes on, keyed by seed subject."""
    token = subject_token(node_id)
    return {subject: f"{subject}.{token}" for subject in NODE_PUBLISHES}


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard match: ``*`` is one token, a final ``>`` one or more tokens."""
    want, have = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return index == len(want) - 1 and len(have) > index
        if index >= len(have) or (token != "*" and token != have[index]):
            return False
    return len(want) == len(have)


def node_permissions(node_id: str) -> dict[str, Any]:
    return {
        "publish": {"allow": [*node_subjects(node_id).values(), INBOX]},
        "subscribe": {"allow": ["mesh.>", INBOX]},
    }


@dataclass(frozen=True)
class ClientUser:
    """A non-node client (gateway, dispatcher, monitoring) with explicit permissions."""

    name: str
    password: str
    publish: Sequence[str] = ()
    subscribe: Sequence[str] = ("mesh.>", INBOX)


@dataclass(frozen=True)
class RelayUser:
    """The hub's relay: the only user that may publish on the exact seed subjects."""

    password: str
    name: str = RELAY_USER
    subjects: Sequence[str] = RELAY_SUBJECTS

    def permissions(self) -> dict[str, Any]:
        return {"publish": {"allow": list(self.subjects)},
                "subscribe": {"allow": [f"{subject}.*" for subject in self.subjects]}}


def relay_password(hub_password: str, explicit: str | None = None) -> str:
    """The relay's NATS password: ``explicit`` when given, else derived from the hub node's password.

    The relay runs on the hub, next to the hub's own credentials, so deriving it adds no secret to
    keep and nothing a reader of the relay's password learns about the hub's (SHA-256, own prefix).
    """
    if explicit:
        _check_password(RELAY_USER, explicit)
        return explicit
    _check_password("the hub (the relay's password is derived from it)", hub_password)
    return hashlib.sha256(f"pmoves.fleet mesh relay\0{hub_password}".encode()).hexdigest()


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"  # the hub's mesh address in a deployment
    port: int = 4222
    http_host: str = "127.0.0.1"  # monitoring endpoint (/varz) for Prometheus, local only by default
    http_port: int | None = 8222
    server_name: str = "pmoves-mesh"
    max_payload: int = 1048576
    extra: Mapping[str, Any] = field(default_factory=dict)


def _bcrypt_salt(user: str, password: str) -> str:
    digest = hashlib.sha256(f"pmoves.fleet nats {user}\0{password}".encode()).digest()[:16]
    std = base64.b64encode(digest).decode()[:22]
    return std.translate(str.maketrans(_STD_ALPHABET, _BCRYPT_ALPHABET))


def bcrypt_hash(user: str, password: str, cost: int = BCRYPT_COST) -> str:
    """Deterministic bcrypt of ``password`` (salt derived from user + password, see module doc)."""
    salt = f"$2b${cost:02d}${_bcrypt_salt(user, password)}"
    try:
        import bcrypt

        return bcrypt.hashpw(password.encode(), salt.encode()).decode()
    except ImportError:
        pass
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

        hashed = crypt.crypt(password, salt)
    except ImportError:
        hashed = None
    if not hashed or not hashed.startswith("$2"):
        raise MeshConfigError("no bcrypt implementation: install python3-bcrypt (or pip bcrypt) where the NATS "
                              "config is generated, or set pmoves_mesh_nats_hash_passwords: false")
    return hashed


def _check_password(name: str, password: str) -> None:
    if not password or len(password) < 16:
        raise MeshConfigError(f"NATS user {name}: password missing or shorter than 16 characters; "
                              "set it in the vault (pmoves_mesh_nats_passwords)")


def build_server_config(node_passwords: Mapping[str, str], clients: Sequence[ClientUser] = (),
                        options: ServerOptions | None = None, hash_passwords: bool = True,
                        relay: RelayUser | None = None) -> dict[str, Any]:
    """nats-server config (JSON is valid nats-server syntax): one user per node + client users (+ the relay).

    Only the relay may publish on an exact seed subject: a client whose publish patterns match one is refused.
    """
    options = options or ServerOptions()
    users: list[dict[str, Any]] = []
    node_tokens(node_passwords)
    for node_id in sorted(node_passwords):
        password = node_passwords[node_id]
        _check_password(node_id, password)
        users.append({"user": node_id, "password": bcrypt_hash(node_id, password) if hash_passwords else password,
                      "permissions": node_permissions(node_id)})
    for client in sorted(clients, key=lambda c: c.name):
        if client.name in node_passwords:
            raise MeshConfigError(f"client user {client.name} has the name of a node")
        if relay is not None and client.name == relay.name:
            raise MeshConfigError(f"client user {client.name} has the name of the mesh relay")
        exact = sorted({s for s in RELAY_SUBJECTS for p in client.publish if subject_matches(p, s)})
        if exact:
            raise MeshConfigError(f"client user {client.name} may publish on {', '.join(exact)}: only the hub's "
                                  "relay publishes on the exact seed subjects (it checks node_id); publish on "
                                  "<subject>.<client name> instead")
        _check_password(client.name, client.password)
        users.append({"user": client.name,
                      "password": bcrypt_hash(client.name, client.password) if hash_passwords else client.password,
                      "permissions": {"publish": {"allow": list(client.publish) or [INBOX]},
                                      "subscribe": {"allow": list(client.subscribe)}}})
    if relay is not None:
        if relay.name in node_passwords:
            raise MeshConfigError(f"the mesh relay's user {relay.name} has the name of a node")
        _check_password(relay.name, relay.password)
        users.append({"user": relay.name,
                      "password": bcrypt_hash(relay.name, relay.password) if hash_passwords else relay.password,
                      "permissions": relay.permissions()})
    if not users:
        raise MeshConfigError("no NATS users: the mesh needs at least one node")
    config: dict[str, Any] = {
        "server_name": options.server_name,
        "host": options.host,
        "port": int(options.port),
        "max_payload": int(options.max_payload),
        "authorization": {"users": users},
    }
    if options.http_port:
        config["http"] = f"{options.http_host}:{int(options.http_port)}"
    config.update(dict(options.extra))
    return config


def render_server_config(config: Mapping[str, Any]) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _slug(text: str) -> str:
    text = re.sub(r"^(nvidia|amd|apple|intel)\s+", "", text.strip(), flags=re.IGNORECASE)
    text = re.sub(r"\b(geforce|radeon)\s+", "", text, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9.]+", "", text.lower())


def node_capabilities(hardware: Mapping[str, Any] | None, plan_node: Mapping[str, Any] | None = None) -> list[str]:
    """Seed 000 capability strings from the hardware fact: ``gpu:rtx5090``, ``vram:32gb``, ``cuda:12.8``."""
    hardware = hardware or {}
    caps: list[str] = []
    if hardware.get("node_class"):
        caps.append(f"class:{hardware['node_class']}")
    if hardware.get("arch"):
        caps.append(f"arch:{hardware['arch']}")
    gpus = hardware.get("gpus") or []
    for name in sorted({_slug(str(g.get("name", ""))) for g in gpus} - {""}):
        caps.append(f"gpu:{name}")
    total_mb = sum(int(g.get("memory_total_mb") or 0) for g in gpus)
    if plan_node and plan_node.get("vram_total_mb") and not total_mb:
        total_mb = int(plan_node["vram_total_mb"])
    if total_mb:
        caps.append(f"vram:{round(total_mb / 1024)}gb")
    nvidia = hardware.get("nvidia") or {}
    if nvidia.get("cuda_driver_version"):
        caps.append(f"cuda:{nvidia['cuda_driver_version']}")
    jetson = hardware.get("jetson") or {}
    if jetson.get("jetpack"):
        caps.append(f"jetpack:{jetson['jetpack']}")
    for npu in hardware.get("npus") or []:
        caps.append(f"npu:{npu.get('driver') or npu.get('vendor')}")
    if hardware.get("memory_mb"):
        caps.append(f"ram:{round(int(hardware['memory_mb']) / 1024)}gb")
    if hardware.get("ollama_library"):
        caps.append(f"ollama:{hardware['ollama_library']}")
    return list(dict.fromkeys(caps))


def node_services(plan_node: Mapping[str, Any] | None, extra: Sequence[str] = ()) -> list[str]:
    """``ollama`` when the node holds models, its planned services, and any extras."""
    plan_node = plan_node or {}
    services = ["ollama"] if plan_node.get("models") else []
    services += [str(s["name"] if isinstance(s, Mapping) else s) for s in plan_node.get("services") or []]
    services += list(extra)
    return list(dict.fromkeys(services))


def agent_config(node_id: str, servers: Sequence[str], password: str, hardware: Mapping[str, Any] | None,
                 plan_node: Mapping[str, Any] | None, *, interval: int = 15, ollama_url: str | None = None,
                 extra_services: Sequence[str] = (), claim_window: float = 0.5) -> dict[str, Any]:
    """The mesh agent's JSON config (roles/mesh/files/pmoves_mesh_agent.py reads it)."""
    if interval < 1:
        raise MeshConfigError("the agent interval must be at least 1 second")
    _check_password(node_id, password)
    return {
        "node_id": node_id,
        "subject_token": subject_token(node_id),
        "servers": list(servers),
        "user": node_id,
        "password": password,
        "capabilities": node_capabilities(hardware, plan_node),
        "services": node_services(plan_node, extra_services),
        "models": sorted((plan_node or {}).get("models") or []),
        "interval": int(interval),
        "claim_window": float(claim_window),
        "ollama_url": ollama_url,
    }


def relay_config(node_ids: Sequence[str], servers: Sequence[str], password: str, *, user: str = RELAY_USER,
                 subjects: Sequence[str] = RELAY_SUBJECTS, stats_interval: int = 15) -> dict[str, Any]:
    """The relay's JSON config (``pmoves_mesh_agent.py --relay`` reads it): who may speak on which token.

    ``nodes`` maps each subject token to its node id, so the relay checks ``node_id`` against the token
    without a second copy of ``subject_token`` on the hub.
    """
    _check_password(user, password)
    if stats_interval < 1:
        raise MeshConfigError("the relay's stats interval must be at least 1 second")
    nodes = node_tokens(node_ids)
    return {"user": user, "password": password, "servers": list(servers), "subjects": list(subjects),
            "nodes": nodes, "stats_interval": int(stats_interval)}
