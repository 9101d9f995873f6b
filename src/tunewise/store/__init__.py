"""The store: every dataset, audit, run, evaluation, decision and deployment tunewise makes.

SQLAlchemy 2 on SQLite by default (WAL mode, in the workspace's `.tunewise/` folder);
`TUNEWISE_DB_URL` (or `Store.open(url)`) points it at PostgreSQL instead. The schema is versioned
with Alembic and migrated to the newest revision every time the store opens.

    from tunewise.store import Store
    store = Store.open()
    ds = store.add_dataset("train.jsonl", format="chat", rows=1200)
    run = store.create_run("lora", base_model="smollm2-135m", dataset_id=ds.id, config={...})
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tunewise.errors import NotFoundError, StoreError
from tunewise.store.models import (
    Alert,
    Audit,
    Base,
    Dataset,
    Decision,
    Deployment,
    DeploymentEvent,
    Evaluation,
    EvaluationCandidate,
    Feedback,
    RequestLog,
    Run,
    RunStep,
    TeacherCall,
    utcnow,
)
from tunewise import workspace

__all__ = [
    "Store",
    "Dataset",
    "Audit",
    "Run",
    "RunStep",
    "Evaluation",
    "EvaluationCandidate",
    "Decision",
    "Deployment",
    "DeploymentEvent",
    "RequestLog",
    "Feedback",
    "Alert",
    "TeacherCall",
    "file_hash",
    "default_url",
    "resolve_url",
]

_MIGRATIONS = Path(__file__).parent / "migrations"


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes: the identity of a dataset in the store."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_url(root: Path | None = None) -> tuple[str, str]:
    """The store's URL and where it came from, in the one order every command uses.

    1. `TUNEWISE_DB_URL` (so that CI, a launcher's worker or a one-off command can point elsewhere),
    2. `store_url` in the workspace's `tunewise.yaml`,
    3. SQLite in the workspace's `.tunewise/` folder.
    """
    explicit = os.environ.get("TUNEWISE_DB_URL")
    if explicit:
        return explicit, "TUNEWISE_DB_URL"
    root = root or workspace.find_root()
    config_path = workspace.config_path(root)
    if config_path.is_file():
        from tunewise.config import load_config  # the config imports every stage's settings; the store must not at import

        configured = load_config(config_path).store_url
        if configured:
            return configured, f"store_url in {config_path}"
    return f"sqlite:///{workspace.state_dir(root) / 'tunewise.db'}", "default (SQLite in the workspace)"


def default_url(root: Path | None = None) -> str:
    return resolve_url(root)[0]


def _describe(url: str) -> str:
    """The URL without its password, for error messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


class Store:
    """A handle on the database. Methods open short sessions and return detached records."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> "Store":
        """The store at `url`, or the workspace's store (see `resolve_url` for the order)."""
        url = url or default_url()
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        try:
            if url.startswith("sqlite:///"):
                Path(url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, future=True)
        except (SQLAlchemyError, ValueError, ModuleNotFoundError) as exc:
            raise StoreError(f"store {_describe(url)}: cannot open ({exc})") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

    @classmethod
    @contextmanager
    def borrow(cls, store: "Store | None") -> Iterator["Store"]:
        """`store` if given (the caller keeps it open), else the workspace's store for the block.

        Library functions take an optional store: a notebook or a test passes the one it holds and
        keeps using it after the call; a command passes none and nothing should be left open. Only
        the store opened here is closed, after the block, also when it raises.
        """
        if store is not None:
            yield store
            return
        opened = cls.open()
        try:
            yield opened
        finally:
            opened.close()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (a no-op when it is already there)."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        try:
            with self.engine.begin() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
                if current == head:
                    return
                if current is None and inspect(connection).has_table("runs"):
                    raise StoreError(f"store {_describe(str(self.engine.url))}: has tunewise tables but no migration record")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store {_describe(str(self.engine.url))}: cannot open or migrate ({_first_line(exc)})") from exc

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"store {_describe(str(self.engine.url))}: {_first_line(exc)}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- generic helpers -------------------------------------------------------------------------
    def _add(self, record):
        with self.session() as session:
            session.add(record)
        return record

    def _get(self, model, ref: str, what: str):
        with self.session() as session:
            record = session.get(model, ref)
            if record is None:
                matches = session.scalars(select(model).where(model.id.startswith(ref)).limit(2)).all() if ref else []
                if len(matches) == 1:
                    return matches[0]
                raise NotFoundError(f"no {what} {ref!r} in the store (list them with `tunewise {what}s`)")
            return record

    def _update(self, model, ref: str, fields: dict[str, Any]):
        with self.session() as session:
            record = session.get(model, ref)
            if record is None:
                raise NotFoundError(f"no {model.__tablename__[:-1]} {ref!r} in the store")
            for key, value in fields.items():
                if not hasattr(record, key):
                    raise AttributeError(f"{model.__name__} has no field {key}")
                setattr(record, key, value)
        return record

    # -- datasets ----------------------------------------------------------------------------------
    def add_dataset(
        self,
        path: str | Path,
        *,
        format: str,
        rows: int,
        rejected_rows: int = 0,
        role: str = "train",
        name: str | None = None,
        parent_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Dataset:
        """Register a file by content hash; registering the same bytes at the same path returns the existing record."""
        path = Path(path).resolve()
        digest = file_hash(path)
        with self.session() as session:
            existing = session.scalars(
                select(Dataset).where(Dataset.content_hash == digest, Dataset.path == str(path))
            ).first()
            if existing is not None:
                if meta:
                    existing.meta = {**(existing.meta or {}), **meta}
                return existing
            record = Dataset(
                name=name or path.stem,
                path=str(path),
                content_hash=digest,
                format=format,
                rows=rows,
                rejected_rows=rejected_rows,
                role=role,
                parent_id=parent_id,
                meta=meta or {},
            )
            session.add(record)
            return record

    def get_dataset(self, ref: str | Path) -> Dataset:
        """A dataset by id (or unique id prefix), or by the path of a registered file (matched by content hash)."""
        ref_str = str(ref)
        path = Path(ref_str)
        if path.is_file():
            digest = file_hash(path)
            with self.session() as session:
                found = session.scalars(
                    select(Dataset).where(Dataset.content_hash == digest).order_by(Dataset.created_at.desc())
                ).first()
                if found is not None:
                    return found
            raise NotFoundError(f"{path}: not registered in the store (run `tunewise data import {path}`)")
        return self._get(Dataset, ref_str, "dataset")

    def find_dataset_by_hash(self, digest: str) -> Dataset | None:
        with self.session() as session:
            return session.scalars(select(Dataset).where(Dataset.content_hash == digest)).first()

    def update_dataset(self, dataset_id: str, **fields: Any) -> Dataset:
        return self._update(Dataset, dataset_id, fields)

    def list_datasets(self, limit: int = 50) -> list[Dataset]:
        with self.session() as session:
            return list(session.scalars(select(Dataset).order_by(Dataset.created_at.desc()).limit(limit)))

    # -- audits ------------------------------------------------------------------------------------
    def add_audit(
        self, dataset_id: str, summary: dict[str, Any], *, passed: bool, eval_dataset_id: str | None = None
    ) -> Audit:
        return self._add(Audit(dataset_id=dataset_id, eval_dataset_id=eval_dataset_id, passed=passed, summary=summary))

    def latest_audit(self, dataset_id: str | None = None) -> Audit | None:
        with self.session() as session:
            query = select(Audit).order_by(Audit.created_at.desc())
            if dataset_id:
                query = query.where(Audit.dataset_id == dataset_id)
            return session.scalars(query).first()

    # -- runs --------------------------------------------------------------------------------------
    def create_run(
        self,
        kind: str,
        *,
        base_model: str,
        config: dict[str, Any],
        dataset_id: str | None = None,
        eval_dataset_id: str | None = None,
        dataset_hash: str | None = None,
        output_dir: str | None = None,
        provider: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        record = Run(
            kind=kind,
            base_model=base_model,
            config=config,
            dataset_id=dataset_id,
            eval_dataset_id=eval_dataset_id,
            dataset_hash=dataset_hash,
            output_dir=output_dir,
            provider=provider,
        )
        if run_id:
            record.id = run_id
        return self._add(record)

    def update_run(self, run_id: str, **fields: Any) -> Run:
        """Set fields of a run; `status='running'` and terminal states also stamp start and finish times."""
        now = utcnow()
        if fields.get("status") == "running":
            fields.setdefault("started_at", now)
        if fields.get("status") in {"completed", "failed", "cancelled"}:
            fields.setdefault("finished_at", now)
        return self._update(Run, run_id, fields)

    def add_run_step(self, run_id: str, step: int, values: dict[str, Any]) -> None:
        self._add(RunStep(run_id=run_id, step=step, values=values))

    def run_steps(self, run_id: str) -> list[RunStep]:
        with self.session() as session:
            return list(session.scalars(select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.step, RunStep.id)))

    def get_run(self, ref: str) -> Run:
        return self._get(Run, ref, "run")

    def list_runs(self, limit: int = 50, *, status: str | None = None) -> list[Run]:
        with self.session() as session:
            query = select(Run).order_by(Run.created_at.desc()).limit(limit)
            if status:
                query = query.where(Run.status == status)
            return list(session.scalars(query))

    # -- evaluations -------------------------------------------------------------------------------
    def add_evaluation(
        self,
        *,
        kind: str = "compare",
        dataset_id: str | None,
        config: dict[str, Any],
        results: dict[str, Any],
        candidates: list[dict[str, Any]] = (),
        train_dataset_id: str | None = None,
        task_type: str | None = None,
        verdict: str | None = None,
        report_path: str | None = None,
    ) -> Evaluation:
        """Store an evaluation and its candidates (dicts with name, spec, run_id, status, metrics, operations)."""
        record = Evaluation(
            kind=kind,
            dataset_id=dataset_id,
            train_dataset_id=train_dataset_id,
            task_type=task_type,
            config=config,
            results=results,
            verdict=verdict,
            report_path=report_path,
        )
        with self.session() as session:
            session.add(record)
            session.flush()
            for candidate in candidates:
                session.add(EvaluationCandidate(evaluation_id=record.id, **candidate))
        return record

    def update_evaluation(self, evaluation_id: str, **fields: Any) -> Evaluation:
        return self._update(Evaluation, evaluation_id, fields)

    def get_evaluation(self, ref: str) -> Evaluation:
        return self._get(Evaluation, ref, "evaluation")

    def evaluation_candidates(self, evaluation_id: str) -> list[EvaluationCandidate]:
        with self.session() as session:
            query = select(EvaluationCandidate).where(EvaluationCandidate.evaluation_id == evaluation_id)
            return list(session.scalars(query.order_by(EvaluationCandidate.id)))

    def latest_evaluation(self, kind: str | None = None) -> Evaluation | None:
        with self.session() as session:
            query = select(Evaluation).order_by(Evaluation.created_at.desc())
            if kind:
                query = query.where(Evaluation.kind == kind)
            return session.scalars(query).first()

    def list_evaluations(self, limit: int = 50) -> list[Evaluation]:
        with self.session() as session:
            return list(session.scalars(select(Evaluation).order_by(Evaluation.created_at.desc()).limit(limit)))

    # -- decisions and deployments -----------------------------------------------------------------
    def add_decision(
        self,
        verdict: str,
        *,
        reasons: list[Any],
        facts: dict[str, Any],
        money: dict[str, Any],
        dataset_id: str | None = None,
        evaluation_id: str | None = None,
    ) -> Decision:
        return self._add(
            Decision(
                verdict=verdict, reasons=reasons, facts=facts, money=money, dataset_id=dataset_id, evaluation_id=evaluation_id
            )
        )

    def latest_decision(self) -> Decision | None:
        with self.session() as session:
            return session.scalars(select(Decision).order_by(Decision.created_at.desc())).first()

    # -- deployments ------------------------------------------------------------------------------
    def create_deployment(self, name: str, state: dict[str, Any], *, actor: str, reason: str | None = None,
                          evaluation_id: str | None = None) -> Deployment:
        """A new deployment at version 1 with its `create` event; a name already taken is a StoreError."""
        with self.session() as session:
            if session.scalars(select(Deployment).where(Deployment.name == name)).first() is not None:
                raise StoreError(f"a deployment named {name!r} already exists (change it with `tunewise deploy set {name}`)")
            record = Deployment(name=name, config=state, traffic={}, version=1, updated_at=utcnow())
            session.add(record)
            session.flush()
            session.add(DeploymentEvent(deployment_id=record.id, version=1, action="create", actor=actor, reason=reason,
                                        evaluation_id=evaluation_id, state=state))
        return record

    def change_deployment(self, ref: str, state: dict[str, Any], *, action: str, actor: str, reason: str | None = None,
                          evaluation_id: str | None = None, status: str | None = None) -> Deployment:
        """Write a deployment's new state and append its event in one transaction; the version goes up by one."""
        deployment_id = self.get_deployment(ref).id
        with self.session() as session:
            # FOR UPDATE on PostgreSQL: two concurrent changes get consecutive versions, not the same one twice.
            record = session.scalars(select(Deployment).where(Deployment.id == deployment_id).with_for_update()).one()
            record.version = (record.version or 1) + 1
            record.config, record.updated_at = state, utcnow()
            if status is not None:
                record.status = status
            session.add(DeploymentEvent(deployment_id=record.id, version=record.version, action=action, actor=actor,
                                        reason=reason, evaluation_id=evaluation_id, state=state))
        return record

    def get_deployment(self, ref: str) -> Deployment:
        """A deployment by name, id or unique id prefix."""
        with self.session() as session:
            found = session.scalars(select(Deployment).where(Deployment.name == ref)).first()
            if found is not None:
                return found
        try:
            return self._get(Deployment, ref, "deployment")
        except NotFoundError:
            raise NotFoundError(f"no deployment {ref!r} in the store (list them with `tunewise deploy list`)") from None

    def list_deployments(self) -> list[Deployment]:
        with self.session() as session:
            return list(session.scalars(select(Deployment).order_by(Deployment.created_at)))

    def deployment_version(self, deployment_id: str) -> int | None:
        """The current version alone: what a server polls to notice a change (None: the deployment is gone)."""
        with self.session() as session:
            return session.scalar(select(Deployment.version).where(Deployment.id == deployment_id))

    def deployment_events(self, deployment_id: str) -> list[DeploymentEvent]:
        with self.session() as session:
            query = select(DeploymentEvent).where(DeploymentEvent.deployment_id == deployment_id)
            return list(session.scalars(query.order_by(DeploymentEvent.version, DeploymentEvent.id)))

    # -- request log, feedback, alerts ---------------------------------------------------------------
    def log_requests(self, rows: list[dict[str, Any]]) -> None:
        """Insert request log rows (dicts of RequestLog fields) in one transaction; returns once committed."""
        if not rows:
            return
        with self.session() as session:
            session.add_all(RequestLog(**row) for row in rows)

    def request_logs(self, deployment_id: str, *, since: datetime | None = None, until: datetime | None = None,
                     role: str | None = "served", limit: int | None = None) -> list[RequestLog]:
        """Logged requests of a deployment, oldest first (`role=None`: served and shadow rows)."""
        with self.session() as session:
            query = select(RequestLog).where(RequestLog.deployment_id == deployment_id)
            if since is not None:
                query = query.where(RequestLog.created_at >= since)
            if until is not None:
                query = query.where(RequestLog.created_at < until)
            if role is not None:
                query = query.where(RequestLog.role == role)
            query = query.order_by(RequestLog.created_at, RequestLog.id)
            return list(session.scalars(query.limit(limit) if limit else query))

    def get_request_log(self, request_id: str) -> RequestLog | None:
        with self.session() as session:
            return session.get(RequestLog, request_id)

    def add_feedback(self, request_id: str, *, label: str | None = None, correct: bool | None = None,
                     score: int | None = None, comment: str | None = None) -> Feedback:
        """Attach ground truth to a logged request; an unknown request id is a NotFoundError."""
        with self.session() as session:
            if session.get(RequestLog, request_id) is None:
                raise NotFoundError(f"no logged request {request_id!r} (feedback takes the x-request-id of a deployment's response)")
            record = Feedback(request_id=request_id, label=label, correct=correct, score=score, comment=comment)
            session.add(record)
        return record

    def feedback(self, deployment_id: str, *, since: datetime | None = None) -> list[Feedback]:
        """Feedback on a deployment's logged requests, oldest first (a request may have several: the last counts)."""
        with self.session() as session:
            query = (select(Feedback).join(RequestLog, Feedback.request_id == RequestLog.id)
                     .where(RequestLog.deployment_id == deployment_id))
            if since is not None:
                query = query.where(RequestLog.created_at >= since)
            return list(session.scalars(query.order_by(Feedback.created_at, Feedback.id)))

    def add_alert(self, deployment_id: str, *, rule: str, message: str, variant: str | None = None, value: float | None = None,
                  threshold: float | None = None, details: dict[str, Any] | None = None, delivered: bool | None = None,
                  delivery_error: str | None = None) -> Alert:
        return self._add(Alert(deployment_id=deployment_id, rule=rule, message=message, variant=variant, value=value,
                               threshold=threshold, details=details or {}, delivered=delivered, delivery_error=delivery_error))

    def alerts(self, deployment_id: str, *, since: datetime | None = None) -> list[Alert]:
        with self.session() as session:
            query = select(Alert).where(Alert.deployment_id == deployment_id)
            if since is not None:
                query = query.where(Alert.created_at >= since)
            return list(session.scalars(query.order_by(Alert.created_at)))

    # -- distillation teacher calls ------------------------------------------------------------------
    def get_teacher_calls(self, teacher: str, prompt_hash: str) -> dict[int, TeacherCall]:
        """The cached replies of `teacher` to one prompt, by sample index."""
        with self.session() as session:
            query = select(TeacherCall).where(TeacherCall.teacher == teacher, TeacherCall.prompt_hash == prompt_hash)
            return {call.sample_index: call for call in session.scalars(query)}

    def add_teacher_call(self, teacher: str, prompt_hash: str, sample_index: int, *, response: str, latency_ms: float,
                         prompt_tokens: int | None = None, completion_tokens: int | None = None,
                         cost_usd: float | None = None) -> TeacherCall:
        """Cache one teacher reply; a reply already cached under the same key is kept (two runs raced) and returned."""
        from sqlalchemy.exc import IntegrityError

        record = TeacherCall(teacher=teacher, prompt_hash=prompt_hash, sample_index=sample_index, response=response,
                             latency_ms=latency_ms, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                             cost_usd=cost_usd)
        try:
            return self._add(record)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            return self.get_teacher_calls(teacher, prompt_hash)[sample_index]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets a report read while a training run writes its steps.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


