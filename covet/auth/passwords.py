"""The password policy: long enough, not common, not the user's own name (ASVS 6.2).

The defaults follow OWASP ASVS 5 and NIST SP 800-63B: at least 8 characters
(15 is recommended where passwords are the only factor), anything up to 4096
bytes allowed (so pass phrases of 64 characters and more work), no
composition rules (no "one digit, one symbol"), common passwords refused, and
nothing too similar to the user's email or username.

The common-password list ships with covet as ``common-passwords.txt.gz``:
about 3,000 entries, the few hundred passwords that top every published
breach list plus their most frequent suffixed forms (``password1``,
``monkey123``). Pass ``common_passwords=`` to use a larger list of your own.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import re
from difflib import SequenceMatcher
from typing import Any

from covet.auth.hashers import MAX_PASSWORD_BYTES
from covet.exceptions import CovetError, ImproperlyConfigured

__all__ = (
    "DEFAULT_POLICY",
    "PasswordPolicy",
    "WeakPasswordError",
    "load_common_passwords",
    "validate_password",
)

_DATA_FILE = "common-passwords.txt.gz"
_PARTS = re.compile(r"\W+")


class WeakPasswordError(CovetError, ValueError):
    """A password breaks the policy; ``messages`` lists every reason, for the form.

    Args:
        messages: One sentence per problem.
    """

    def __init__(self, messages: list[str]) -> None:
        self.messages = list(messages)
        super().__init__(" ".join(self.messages))


@functools.cache
def load_common_passwords() -> frozenset[str]:
    """Return the shipped common-password list (lower-case), loaded once."""
    data = importlib.resources.files("covet.auth").joinpath(_DATA_FILE).read_bytes()
    text = gzip.decompress(data).decode("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


@dataclasses.dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """What makes a password acceptable.

    Attributes:
        min_length: Fewest characters (default 8; 15 is recommended when the
            password is the only factor).
        max_bytes: Most bytes of UTF-8 (default 4096, the hashing limit).
        check_common: Refuse passwords on the common-password list.
        common_passwords: Your own list (lower-case); None uses the shipped one.
        user_attributes: User attributes the password must not resemble.
        max_similarity: Refuse when the password is at least this similar
            (0.1 to 1.0, a :class:`difflib.SequenceMatcher` ratio) to one of them.
    """

    min_length: int = 8
    max_bytes: int = MAX_PASSWORD_BYTES
    check_common: bool = True
    common_passwords: frozenset[str] | None = None
    user_attributes: tuple[str, ...] = ("username", "email", "first_name", "last_name")
    max_similarity: float = 0.7

    def __post_init__(self) -> None:
        length: object = self.min_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ImproperlyConfigured(
                f"PasswordPolicy min_length={self.min_length!r}. Pass an int >= 1 (8 or more)."
            )
        if not 0 < self.max_bytes <= MAX_PASSWORD_BYTES or self.max_bytes < self.min_length:
            raise ImproperlyConfigured(
                f"PasswordPolicy max_bytes={self.max_bytes!r}. Pass a number between "
                f"min_length and {MAX_PASSWORD_BYTES}."
            )
        if not 0.1 <= self.max_similarity <= 1.0:
            raise ImproperlyConfigured(
                f"PasswordPolicy max_similarity={self.max_similarity!r}. Pass 0.1 to 1.0."
            )

    def problems(self, password: str, user: Any = None) -> list[str]:
        """Return every reason ``password`` is refused (empty when it is fine).

        Args:
            password: The proposed password.
            user: The user it is for (an object or a mapping); its
                ``user_attributes`` are compared with the password.
        """
        found: list[str] = []
        if len(password) < self.min_length:
            found.append(
                "This password is too short. It must contain at least "
                f"{self.min_length} characters."
            )
        if len(password.encode("utf-8")) > self.max_bytes:
            found.append(f"This password is too long. It must be at most {self.max_bytes} bytes.")
            return found  # do not spend time comparing megabytes
        if self.check_common:
            common = self.common_passwords
            if common is None:
                common = load_common_passwords()
            if password.strip().lower() in common:
                found.append("This password is too common.")
        attribute = self._similar_attribute(password, user)
        if attribute is not None:
            found.append(f"This password is too similar to your {attribute.replace('_', ' ')}.")
        return found

    def _similar_attribute(self, password: str, user: Any) -> str | None:
        if user is None:
            return None
        lowered = password.lower()
        for name in self.user_attributes:
            value = user.get(name) if isinstance(user, dict) else getattr(user, name, None)
            if not isinstance(value, str) or not value:
                continue
            value = value.lower()
            candidates = [value, *(part for part in _PARTS.split(value) if len(part) >= 3)]
            if "@" in value:
                candidates.append(value.partition("@")[0])
            for candidate in candidates:
                # SequenceMatcher is quadratic: a much longer password cannot be similar.
                if len(lowered) > 2 * len(candidate) + 8:
                    continue
                matcher = SequenceMatcher(a=lowered, b=candidate)
                limit = self.max_similarity
                if matcher.quick_ratio() >= limit and matcher.ratio() >= limit:
                    return name
        return None

    def validate(self, password: str, user: Any = None) -> None:
        """Check ``password`` against the policy.

        Raises:
            WeakPasswordError: Listing every problem.
        """
        found = self.problems(password, user)
        if found:
            raise WeakPasswordError(found)


#: The policy :func:`validate_password` applies by default.
DEFAULT_POLICY = PasswordPolicy()


def validate_password(
    password: str, user: Any = None, *, policy: PasswordPolicy | None = None
) -> None:
    """Check a new password against ``policy`` (default :data:`DEFAULT_POLICY`).

    Args:
        password: The proposed password.
        user: The user it is for, to refuse passwords resembling their name or email.
        policy: The rules to apply.

    Raises:
        WeakPasswordError: Listing every problem.
    """
    (policy or DEFAULT_POLICY).validate(password, user)
