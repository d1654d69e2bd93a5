"""What the OpenAPI document states but a generator cannot produce from it alone, for the
schemathesis run in CI (`.ci/schemathesis` loads this file through SCHEMATHESIS_HOOKS).

The document says everything else as JSON Schema. These four rules it says in words, because
JSON Schema has no keyword for them:

- `format: rsa-public-key-pem`: an RSA public key of at least 2048 bits, in PEM. Random text is
  not one; the generator draws from keys made here with openssl.
- VectorCare's state and location times are "not in the future, at most 7 days ago": relative
  to now, which a schema cannot name. Valid (positive) cases get a time of the last 6 days.
- Vital's resend window ends after its start and at most 60 days later: a rule between two
  fields. Valid cases get a window that keeps it.
- A provider connection's body (and an added key) is the variant of the `{provider}` in the path:
  a rule between the path and the body. Each variant names its provider (`x-provider`); valid
  cases get the provider of a variant their body fits.

Invalid (negative) cases are left as generated: the server must still refuse them.
"""

import datetime as dt
import subprocess
import zlib

import schemathesis
from hypothesis import strategies as st


def _rsa_public_key_pem() -> str:
    private = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        capture_output=True,
        check=True,
    ).stdout
    return subprocess.run(
        ["openssl", "pkey", "-pubout"], input=private, capture_output=True, check=True
    ).stdout.decode()


schemathesis.openapi.format(
    "rsa-public-key-pem", st.sampled_from([_rsa_public_key_pem() for _ in range(3)])
)


def _seconds_ago(seed: object, at_most: int) -> int:
    """A repeatable offset below `at_most`, from the generated value it replaces."""
    return zlib.crc32(repr(seed).encode()) % at_most


def _utc(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


SIX_DAYS = 6 * 86_400


def _provider_for(case, body: dict):
    """The first provider whose variant of the body's schema has every field the body has."""
    schema = case.operation.definition.raw.get("requestBody", {})
    ref = schema.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    components = case.operation.schema.raw_schema.get("components", {}).get("schemas", {})
    component = components.get(name, {})
    for variant in component.get("anyOf", component.get("oneOf", [])):
        if "x-provider" in variant and set(body) <= set(variant.get("properties", {})):
            return variant["x-provider"]
    return None


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return case
    now = dt.datetime.now(dt.timezone.utc)
    body = case.body
    if "/providers/{provider}" in case.path and case.path_parameters:
        provider = _provider_for(case, body)
        if provider is not None:
            case.path_parameters["provider"] = provider
    elif "/vectorcare/" in case.path and case.path.endswith("/state"):
        if isinstance(body.get("timestamp"), str):
            body["timestamp"] = _utc(now - dt.timedelta(seconds=_seconds_ago(body, SIX_DAYS)))
    elif "/vectorcare/" in case.path and case.path.endswith("/locations"):
        for point in body.get("locations") or []:
            if isinstance(point, dict) and isinstance(point.get("timestamp"), (int, float)):
                point["timestamp"] = int(now.timestamp()) - _seconds_ago(point, SIX_DAYS)
    elif "/vital/" in case.path and isinstance(body.get("start_at"), str):
        start = now - dt.timedelta(seconds=_seconds_ago(body, 365 * 86_400))
        span = 1 + _seconds_ago(body.get("end_at"), 60 * 86_400)
        body["start_at"] = _utc(start)
        body["end_at"] = _utc(start + dt.timedelta(seconds=span))
    return case
