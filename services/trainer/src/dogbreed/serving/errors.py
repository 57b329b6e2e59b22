"""Every way a request to the model can fail, as one exception type with a stable code.

Copied into every artifact (``code/dogbreed_serving/``). The codes and their HTTP statuses are
contracts/api.json's, shared with the API (services/inference_lambda) so a client sees one vocabulary;
add codes there, never rename them.

Inside SageMaker's PyTorch serving container the inference toolkit turns any exception raised by
``input_fn``/``predict_fn``/``output_fn`` into a 500, *unless* it is a
``sagemaker_inference.errors.BaseInferenceToolkitError``: then it answers with that exception's
``status_code``. :class:`ServingError` therefore derives from that class when the toolkit is
importable (in the container) and from ``Exception`` elsewhere, so a bad image is a 4xx in both places.
"""

from __future__ import annotations

import json

try:  # present in SageMaker's serving containers only
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # pragma: no cover - depends on the environment
    _ToolkitError = None

# code -> HTTP status, the endpoint's codes in contracts/api.json (generated _contract.py, copied into the
# artifact with this module). Client faults are 4xx; 5xx only when the server is at fault.
from ._contract import ERROR_CODES  # noqa: E402  (after the toolkit probe above)


_Base = _ToolkitError if _ToolkitError is not None else Exception


class ServingError(_Base):
    """A request failure: a stable snake_case ``code``, its HTTP ``status`` and a ``detail`` safe to show."""

    def __init__(self, code: str, detail: str):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.status = ERROR_CODES[code]
        self.detail = detail
        if _ToolkitError is not None:
            # (status_code, message, phrase): the toolkit answers with status_code and writes
            # message, a newline and a traceback as the body, so message is the one-line error JSON.
            super().__init__(self.status, self.to_json(), _reason(self.status))
        else:
            super().__init__(detail)

    def to_dict(self) -> dict:
        return error_body(self.code, self.detail)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def __str__(self) -> str:
        return self.detail

    def __repr__(self) -> str:
        return f"ServingError({self.status} {self.code}: {self.detail})"


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(code: str, message: str) -> dict:
    """The contract's error JSON for ``code``."""
    return {"error": {"code": code, "message": message}}
