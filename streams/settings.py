"""One typed settings object for every prodromal process (worker, producer, sinks, dashboard).

Sources, highest priority first:

1. explicit overrides (CLI flags), e.g. ``load_settings(overrides={"kafka.broker": "..."})``;
2. environment variables with the ``PRODROMAL_`` prefix, sections separated by ``__``
   (``PRODROMAL_KAFKA__BROKER``, ``PRODROMAL_INFLUX__TOKEN_FILE``);
3. a TOML file given by ``--config FILE`` or ``PRODROMAL_CONFIG`` (sections ``[kafka]``,
   ``[faust]``, ``[influx]``, ``[spool]``, ``[privacy]``, ``[dashboard]``, ``[worker]``);
4. the defaults below, which are those of a production Kafka (Faust's own defaults).

Secrets (Kafka SASL password, InfluxDB token, pseudonymisation key, dashboard token) are
:class:`pydantic.SecretStr`: they print as ``'**********'`` in ``repr``, logs and errors. Each can
come from its variable or from a file (``*_file``, e.g. a Docker/Kubernetes secret mount); a
secret file is read once at load and its content never appears in an error message.

Examples
--------
>>> s = load_settings(overrides={"kafka.broker": "kafka://127.0.0.1:9092"}, env={})
>>> s.kafka.broker
'kafka://127.0.0.1:9092'
>>> "hunter2" in repr(load_settings(overrides={"influx.token": "hunter2"}, env={}))
False
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "Settings",
    "KafkaSettings",
    "FaustSettings",
    "InfluxSettings",
    "SpoolSettings",
    "PrivacySettings",
    "DashboardSettings",
    "WorkerSettings",
    "SettingsError",
    "load_settings",
    "TANSU_FAUST",
]

ENV_PREFIX = "PRODROMAL_"
MAX_SECRET_FILE = 64 * 1024

#: Faust knobs that the Tansu test broker needs (see shared notes): production Kafka keeps defaults.
TANSU_FAUST = {
    "processing_guarantee": "at_least_once",
    "broker_session_timeout": 6.0,
    "producer_max_batch_size": 1,
    "table_standby_replicas": 0,
    "store": "memory://",
}


class SettingsError(ValueError):
    """Settings are invalid; the message names the setting, never a secret's value."""


def _read_secret_file(path: Path, what: str) -> SecretStr:
    try:
        st = path.stat()
        if st.st_size > MAX_SECRET_FILE:
            raise SettingsError(f"{what}: secret file {path} is larger than {MAX_SECRET_FILE} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"{what}: cannot read secret file {path}: {e.strerror or type(e).__name__}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{what}: secret file {path} is not UTF-8 text") from None
    # A trailing newline is an editor artefact, not part of the secret.
    return SecretStr(text.rstrip("\r\n"))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KafkaSettings(_Section):
    """Broker address, TLS and SASL."""

    broker: str = "kafka://127.0.0.1:9092"
    #: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; derived from TLS/SASL settings when None.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_check_hostname: bool = True
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    client_id: str = "prodromal"

    @model_validator(mode="after")
    def _resolve(self) -> KafkaSettings:
        if self.sasl_password is None and self.sasl_password_file is not None:
            object.__setattr__(self, "sasl_password", _read_secret_file(self.sasl_password_file, "kafka.sasl_password_file"))
        if self.sasl_mechanism and (not self.sasl_username or self.sasl_password is None):
            raise SettingsError(
                "kafka.sasl_mechanism is set: kafka.sasl_username and kafka.sasl_password "
                "(or kafka.sasl_password_file) are required"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise SettingsError("kafka.tls_cert_file and kafka.tls_key_file go together (client certificate)")
        return self

    @property
    def uses_tls(self) -> bool:
        if self.security_protocol:
            return self.security_protocol in ("SSL", "SASL_SSL")
        return any(p is not None for p in (self.tls_ca_file, self.tls_cert_file))

    @property
    def protocol(self) -> str:
        if self.security_protocol:
            return self.security_protocol
        if self.sasl_mechanism:
            return "SASL_SSL" if self.uses_tls else "SASL_PLAINTEXT"
        return "SSL" if self.uses_tls else "PLAINTEXT"

    @property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` list for plain Kafka clients (URL schemes stripped)."""
        out = []
        for part in self.broker.replace(";", ",").split(","):
            part = part.strip()
            if "://" in part:
                part = part.split("://", 1)[1]
            if part:
                out.append(part)
        return out

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        ctx = ssl.create_default_context(cafile=str(self.tls_ca_file) if self.tls_ca_file else None)
        ctx.check_hostname = self.tls_check_hostname
        if self.tls_cert_file is not None:
            ctx.load_cert_chain(str(self.tls_cert_file), str(self.tls_key_file))
        return ctx

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiokafka.AIOKafkaProducer``/``Consumer``."""
        kw: dict[str, Any] = {
            "bootstrap_servers": ",".join(self.bootstrap_servers),
            "client_id": self.client_id,
            "security_protocol": self.protocol,
        }
        if self.uses_tls:
            kw["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism:
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        return kw

    def faust_credentials(self) -> Any:
        """``faust`` credentials object, or None for PLAINTEXT."""
        if self.protocol == "PLAINTEXT":
            return None
        import faust  # imported here: `prodromal --help` must not import faust

        ctx = self.ssl_context()
        if self.sasl_mechanism:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value() if self.sasl_password else None,
                mechanism=self.sasl_mechanism,
                ssl_context=ctx,
            )
        return faust.SSLCredentials(ctx)


class FaustSettings(_Section):
    """Faust knobs. Defaults are Faust's (production Kafka); see :data:`TANSU_FAUST` for tests."""

    app_id: str = "prodromal"
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    broker_session_timeout: float = Field(60.0, gt=0)
    broker_heartbeat_interval: float = Field(3.0, gt=0)
    producer_max_batch_size: int = Field(16384, ge=1)
    #: Largest produced request; a participant's state in the changelog can pass Kafka's 1 MB default.
    producer_max_request_size: int = Field(16 * 1024 * 1024, ge=1024)
    table_standby_replicas: int = Field(1, ge=0)
    store: str = "memory://"
    topic_partitions: int = Field(8, ge=1, le=10000)
    topic_replication_factor: int = Field(1, ge=1)
    data_dir: Path = Path("var/faust")
    web_enabled: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)

    def app_kwargs(self, kafka: KafkaSettings) -> dict[str, Any]:
        """Keyword arguments for ``faust.App``."""
        kw: dict[str, Any] = {
            "broker": self.broker_url(kafka),
            "processing_guarantee": self.processing_guarantee,
            "broker_session_timeout": self.broker_session_timeout,
            "broker_heartbeat_interval": self.broker_heartbeat_interval,
            "producer_max_batch_size": self.producer_max_batch_size,
            "producer_max_request_size": self.producer_max_request_size,
            "table_standby_replicas": self.table_standby_replicas,
            "store": self.store,
            "topic_partitions": self.topic_partitions,
            "topic_replication_factor": self.topic_replication_factor,
            "datadir": str(self.data_dir),
            "web_enabled": self.web_enabled,
            "web_bind": self.web_host,
            "web_port": self.web_port,
            "web_host": self.web_host,
        }
        creds = kafka.faust_credentials()
        if creds is not None:
            kw["broker_credentials"] = creds
        return kw

    @staticmethod
    def broker_url(kafka: KafkaSettings) -> str:
        return ";".join(f"kafka://{h}" for h in kafka.bootstrap_servers)


class InfluxSettings(_Section):
    """InfluxDB v2 write API (InfluxDB 1.8+, 2.x, 3.x). ``bucket`` is ``db/rp`` on 1.x."""

    url: str | None = None  # None: no InfluxDB, the spool only
    org: str = "prodromal"
    bucket: str = "prodromal"
    token: SecretStr | None = None
    token_file: Path | None = None
    batch_size: int = Field(1000, ge=1)
    flush_interval_ms: int = Field(1000, ge=1)
    timeout_ms: int = Field(10_000, ge=100)
    max_retries: int = Field(3, ge=0)
    retry_interval_ms: int = Field(500, ge=1)
    max_retry_delay_ms: int = Field(10_000, ge=1)
    verify_ssl: bool = True

    @model_validator(mode="after")
    def _resolve(self) -> InfluxSettings:
        if self.token is None and self.token_file is not None:
            object.__setattr__(self, "token", _read_secret_file(self.token_file, "influx.token_file"))
        return self


class SpoolSettings(_Section):
    """Local line-protocol spool used while InfluxDB is unreachable."""

    dir: Path = Path("var/spool")
    max_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    segment_bytes: int = Field(4 * 1024 * 1024, ge=256)
    #: When the spool is full (bound or disk): "drop" points (counted, alarmed) or "wait": hold the
    #: batch, alarm, retry draining, and block the caller (the worker's sink agent does not
    #: acknowledge, so Kafka keeps the points: nothing lost).
    when_full: Literal["drop", "wait"] = "wait"


class PrivacySettings(_Section):
    """Keyed pseudonymisation of participant ids leaving the pipeline (HMAC-SHA256)."""

    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None

    @model_validator(mode="after")
    def _resolve(self) -> PrivacySettings:
        if self.pseudonym_key is None and self.pseudonym_key_file is not None:
            object.__setattr__(self, "pseudonym_key", _read_secret_file(self.pseudonym_key_file, "privacy.pseudonym_key_file"))
        if self.pseudonym_key is not None and len(self.pseudonym_key.get_secret_value()) < 16:
            raise SettingsError("privacy.pseudonym_key: must be at least 16 characters")
        return self

    def pseudonymise(self, participant_id: str) -> str:
        """Keyed hash of a participant id (identity when no key is configured)."""
        if self.pseudonym_key is None:
            return participant_id
        import hashlib
        import hmac

        mac = hmac.new(self.pseudonym_key.get_secret_value().encode(), participant_id.encode(), hashlib.sha256)
        return "p" + mac.hexdigest()[:20]


class DashboardSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8050, ge=0, le=65535)
    token: SecretStr | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _resolve(self) -> DashboardSettings:
        if self.token is None and self.token_file is not None:
            object.__setattr__(self, "token", _read_secret_file(self.token_file, "dashboard.token_file"))
        if not _is_loopback(self.host) and self.token is None:
            raise SettingsError(
                f"dashboard.host {self.host!r} is not a loopback address: set dashboard.token "
                "(PRODROMAL_DASHBOARD__TOKEN or PRODROMAL_DASHBOARD__TOKEN_FILE) to serve beyond 127.0.0.1"
            )
        return self


class WorkerSettings(_Section):
    """Streaming worker behaviour."""

    cohort: str = "live"
    detector: str = "nightsignal"
    model: Path | None = None  # model artifact loaded at start (forest, lightgbm, early, late)
    consecutive: int = Field(1, ge=1)  # nights a score must stay above threshold
    budget_per_30d: int | None = Field(None, ge=1)  # alert budget per participant
    #: Close a participant's open night when no data has arrived for this long (wall clock).
    idle_close_s: float = Field(3600.0, gt=0)
    idle_check_interval_s: float = Field(10.0, gt=0)
    max_message_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_clock_skew_s: float = Field(300.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_none(cls, data: Any) -> Any:
        # An empty variable (PRODROMAL_WORKER__MODEL=) means "not set", not the current directory.
        if isinstance(data, dict):
            data = {k: (None if v == "" else v) for k, v in data.items()}
        return data


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_toml_path: ContextVar[Path | None] = ContextVar("prodromal_toml_path", default=None)
_env_map: ContextVar[Mapping[str, str] | None] = ContextVar("prodromal_env_map", default=None)


class Settings(BaseSettings):
    """Everything a prodromal process needs to know. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    faust: FaustSettings = Field(default_factory=FaustSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env_map = _env_map.get()
        if env_map is not None:
            from pydantic_settings import EnvSettingsSource
            from pydantic_settings.sources.utils import parse_env_vars

            class _MapEnv(EnvSettingsSource):
                def _load_env_vars(self) -> Mapping[str, str | None]:
                    return parse_env_vars(env_map, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)

            env_settings = _MapEnv(settings_cls)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path.get()
        if path is not None:
            from pydantic_settings import TomlConfigSettingsSource

            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def public_dict(self) -> dict[str, Any]:
        """Settings for reports and logs: secrets masked."""
        return self.model_dump(mode="json")


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        parts = key.replace("__", ".").split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = value
    return out


def load_settings(
    config: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Load settings from overrides, environment, TOML file and defaults (in that priority).

    Parameters
    ----------
    config : path, optional
        TOML file; defaults to ``$PRODROMAL_CONFIG`` when set.
    overrides : mapping, optional
        Dotted keys (``"kafka.broker"``) from CLI flags; ``None`` values are ignored.
    env : mapping, optional
        Environment to read instead of ``os.environ`` (for tests).

    Raises
    ------
    SettingsError
        On an unreadable config file or an invalid value; the message names the setting.
    """
    environ = os.environ if env is None else env
    if config is None and environ.get("PRODROMAL_CONFIG"):
        config = environ["PRODROMAL_CONFIG"]
    path = Path(config) if config is not None else None
    if path is not None:
        if not path.is_file():
            raise SettingsError(f"config file {path}: not found")
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SettingsError(f"config file {path}: not valid TOML: {e}") from None
    tok_path = _toml_path.set(path)
    tok_env = _env_map.set(env)
    try:
        return Settings(**_nest(overrides or {}))
    except ValidationError as e:
        raise SettingsError(_describe(e)) from None
    finally:
        _toml_path.reset(tok_path)
        _env_map.reset(tok_env)


def _describe(e: ValidationError) -> str:
    msgs = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        # Never echo the input: it may be a secret.
        msgs.append(f"{loc or 'settings'}: {msg.removeprefix('Value error, ')}")
    return "invalid settings: " + "; ".join(msgs)
