"""``thresher review``: a local page that shows one item at a time and stores each answer at once.

The page is served on 127.0.0.1 only, and every request must carry the session's token (in the URL the
command prints, then in a cookie), as Jupyter does, so that another user of the machine cannot read or
write through it. The queue (:mod:`thresher.pipeline.review_queue`) is read once at start; each answer
is written to the ``reviews`` table before the page moves on (:mod:`thresher.storage.reviews`), waiting
for a running stage as readers do. FastAPI and uvicorn come with Prefect's server; the page is one HTML
file with a little plain JavaScript, no build chain.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from thresher.pipeline.review_queue import ReviewQueue

COOKIE = "thresher_review"
PAGE = Path(__file__).with_name("review.html")


class Answer(BaseModel):
    """What the page posts: the item on it, and the class id given (None: unsure) or a skip."""

    item_id: str
    label: int | None = None
    skip: bool = False


@dataclass
class Session:
    """One reviewer's pass over a queue: where they are, what they answered here (for undo)."""

    db: str
    queue: ReviewQueue
    reviewer: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    timeout: float | None = None
    position: int = 0
    answers: dict[str, int | None] = field(default_factory=dict)  # item_id -> label (None: unsure), this session
    history: list[tuple[int, str, bool]] = field(default_factory=list)  # (position, item_id, answered) per step

    def state(self) -> dict[str, Any]:
        items = self.queue.items
        current = items[self.position].as_dict(self.queue.classes) if self.position < len(items) else None
        if current is not None:
            current["answer"] = self.answers.get(current["item_id"], "none")
        return {"classes": self.queue.classes, "strategy": self.queue.strategy, "reviewer": self.reviewer,
                "position": self.position, "planned": len(items), "reviewed": len(self.answers), "item": current,
                "agreement": self.agreement()}

    def agreement(self) -> dict[str, Any]:
        """How often each candidate label model gave the answered class, and how often each detector's flag
        was right (the answer differs from the label) on the items answered in this session."""
        answered = [(item, self.answers[item.item_id]) for item in self.queue.items
                    if self.answers.get(item.item_id) is not None]
        models: dict[str, list[int]] = {}
        detectors: dict[str, list[int]] = {}
        for item, answer in answered:
            for name, predicted in item.models.items():
                models.setdefault(name, []).append(int(predicted == answer))
            for name, verdict in item.detectors.items():
                if verdict["flagged"]:
                    detectors.setdefault(name, []).append(int(answer != item.label))
        return {"answers": len(answered),
                "models": {m: {"agree": sum(v), "of": len(v)} for m, v in models.items()},
                "detectors": {d: {"right": sum(v), "flagged": len(v)} for d, v in detectors.items()}}

    def answer(self, item_id: str, label: int | None, *, skip: bool = False) -> None:
        from thresher.storage.reviews import record_answer

        items = self.queue.items
        if self.position >= len(items) or items[self.position].item_id != item_id:
            raise ValueError("That item is not the one on the page (answered in another tab?); reload the page.")
        if label is not None and not 0 <= label < len(self.queue.classes):
            raise ValueError(f"label must be a class id below {len(self.queue.classes)} or null; got {label}.")
        if not skip:
            record_answer(self.db, item_id, self.reviewer, label, shown_from=self.queue.runs, timeout=self.timeout)
            self.answers[item_id] = label
        self.history.append((self.position, item_id, not skip))
        self.position += 1

    def undo(self) -> None:
        from thresher.storage.reviews import remove_answer

        if not self.history:
            return
        position, item_id, answered = self.history.pop()
        if answered:
            remove_answer(self.db, item_id, self.reviewer, timeout=self.timeout)
            self.answers.pop(item_id, None)
        self.position = position


def create_app(session: Session) -> Any:
    """The review page's web app over ``session``: every route needs the session's token."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="thresher review", docs_url=None, redoc_url=None, openapi_url=None)

    def allowed(request: Request) -> bool:
        given = request.query_params.get("token") or request.cookies.get(COOKIE) or request.headers.get("X-Review-Token")
        return given is not None and secrets.compare_digest(given, session.token)

    @app.middleware("http")
    async def token_only(request: Request, call_next: Any) -> Any:
        if not allowed(request):
            return JSONResponse({"error": "A valid review token is needed: open the URL `thresher review` printed."},
                                status_code=403)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict")
        return response

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/api/state")
    def state() -> dict[str, Any]:
        return session.state()

    @app.post("/api/answer")
    def answer(body: Answer) -> dict[str, Any]:
        try:
            session.answer(body.item_id, body.label, skip=body.skip)
        except (ValueError, LookupError) as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return session.state()

    @app.post("/api/undo")
    def undo() -> dict[str, Any]:
        session.undo()
        return session.state()

    return app
