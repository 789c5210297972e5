"""Identity-policy evaluation with conditions: the part of IAM that moto 5.2.5 leaves out.

moto's access control (moto/iam/access_control.py) matches Action and Resource, but treats
every Condition of an identity policy as met (`_check_conditions` gets no request values,
so an Allow scoped by a tag allows any resource and a conditional Deny denies everything),
and passes Resource "*" for every EC2 and CloudFormation call. The harness evaluates those
calls here instead, with a request context taken from moto's own state (see `context.py`).

Hand-written because no maintained Python library evaluates IAM conditions (policyuniverse
and parliament parse and lint policies; neither decides a request). It covers the operators
and rules the template uses, AWS's documented semantics, and raises on anything else rather
than guessing: explicit Deny wins, then any Allow, else the implicit deny; a missing key
fails a positive operator and satisfies a negated one (`...IfExists` satisfies both);
`${key}` policy variables are replaced from the context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Json = dict[str, Any]
ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"
_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's `*` and `?` (no other special characters)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE if ignore_case else 0
    return re.fullmatch(regex, value, flags) is not None


def _equals(expected: str, actual: str) -> bool:
    return expected == actual


POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _equals,
    "StringLike": wildcard,
    "ArnEquals": _equals,
    "ArnLike": wildcard,
    "Bool": lambda e, a: e.lower() == a.lower(),
}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike",
           "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}  # fmt: skip


def _substitute(value: str, context: Mapping[str, str]) -> str | None:
    """`${key}` from the context; None when a variable cannot be resolved."""
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        got = context.get(match.group(1).lower())
        if got is None:
            missing.append(match.group(1))
        return got or ""

    result = _VARIABLE.sub(one, str(value))
    return None if missing else result


def _key_holds(operator: str, key: str, expected: list[Any], context: Mapping[str, str]) -> bool:
    actual = context.get(key.lower())
    base, if_exists = operator.removesuffix("IfExists"), operator.endswith("IfExists")
    if base == "Null":
        return (actual is None) == (str(expected[0]).lower() == "true")
    if actual is None:
        return if_exists or base in NEGATED
    values = [v for v in (_substitute(e, context) for e in expected) if v is not None]
    if base in NEGATED:
        return not any(POSITIVE[NEGATED[base]](v, actual) for v in values)
    if base not in POSITIVE:
        raise NotImplementedError(f"condition operator {operator} is not evaluated here")
    return any(POSITIVE[base](v, actual) for v in values)


def conditions_hold(condition: Json, context: Mapping[str, str]) -> bool:
    return all(
        _key_holds(operator, key, _as_list(expected), context)
        for operator, keys in condition.items()
        for key, expected in keys.items()
    )


def _applies(statement: Json, action: str, resource: str, context: Mapping[str, str]) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise NotImplementedError("NotAction/NotResource are not evaluated here")
    actions = _as_list(statement.get("Action", []))
    if not any(wildcard(a, action, ignore_case=True) for a in actions):
        return False
    if not any(wildcard(r, resource) for r in _as_list(statement.get("Resource", []))):
        return False
    return conditions_hold(statement.get("Condition", {}), context)


def decide(
    documents: Iterable[Json], action: str, resource: str, context: Mapping[str, str]
) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for one action on one resource."""
    lowered = {k.lower(): v for k, v in context.items()}
    allowed = False
    for document in documents:
        for statement in _as_list(document.get("Statement", [])):
            if not _applies(statement, action, resource, lowered):
                continue
            if statement.get("Effect") == "Deny":
                return EXPLICIT_DENY
            allowed = True
    return ALLOW if allowed else IMPLICIT_DENY
