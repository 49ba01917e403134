"""Small, fast containers for the pieces of an HTTP request.

``URL``, ``Headers``, ``QueryParams`` and ``FormData`` are immutable views
built lazily from an ASGI scope; ``MutableHeaders`` is the one mutable
variant, used to build responses and by middleware. ``UploadFile`` wraps a
``SpooledTemporaryFile`` and moves every disk operation off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, NamedTuple, TypeVar, overload
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit

if TYPE_CHECKING:
    from covet.types import Scope

__all__ = (
    "URL",
    "Address",
    "FormData",
    "Headers",
    "ImmutableMultiDict",
    "MutableHeaders",
    "QueryParams",
    "State",
    "UploadFile",
    "add_vary_to_raw",
    "encode_header_value",
)

_K = TypeVar("_K")
_V = TypeVar("_V")
_T = TypeVar("_T")

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SECURE_SCHEMES = frozenset({"https", "wss"})
# RFC 3986 pchar plus "/": everything else in a decoded ASGI path is percent-encoded again, so
# a decoded "?" or "#" can never turn into a query or fragment when the URL is rebuilt.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
# Everything printable in ASCII except space is left alone when a raw query string contains
# non-ASCII bytes: only those bytes get percent-encoded.
_QUERY_SAFE = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_VALUE_CHARS = re.compile(r"[\r\n\x00]")


class _Missing:
    """Sentinel type for keyword arguments where ``None`` is a meaningful value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


class Address(NamedTuple):
    """The ``(host, port)`` of a network peer, as given in the ASGI scope."""

    host: str
    port: int


def _scope_path(scope: Scope) -> str:
    """Return the full request path of ``scope``, including ``root_path`` exactly once.

    Current servers (uvicorn >= 0.26) and covet's own ``Mount`` put the root path inside
    ``scope["path"]``; older servers and hand-built scopes do not. Both are accepted.
    """
    path: str = scope.get("path", "/")
    root_path: str = scope.get("root_path", "")
    if root_path and not (
        path.startswith(root_path) and (len(path) == len(root_path) or path[len(root_path)] == "/")
    ):
        path = root_path.rstrip("/") + path
    return path


def _scope_origin(scope: Scope) -> str:
    """Return ``scheme://host[:port]`` for ``scope``, or ``""`` when nothing names a host."""
    scheme: str = scope.get("scheme", "http")
    for key, value in scope.get("headers", ()):
        if key == b"host":
            if value:
                return f"{scheme}://{value.decode('latin-1')}"
            break
    server = scope.get("server")
    if server is None:
        return ""
    host, port = server
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal needs brackets in a URL (RFC 3986 section 3.2.2)
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _quote_path(path: str) -> str:
    if (
        path.isascii()
        and "%" not in path
        and "?" not in path
        and "#" not in path
        and " " not in path
    ):
        return path
    return quote(path, safe=_PATH_SAFE)


class URL:
    """An immutable URL that compares equal to its string form.

    Build one from a string, ``URL("https://example.com/a?b=1")``, or from an
    ASGI scope, ``URL(scope=scope)``. From a scope the URL uses the scheme, the
    ``Host`` header (falling back to ``scope["server"]``), ``root_path`` plus
    ``path`` (percent-encoded again) and the raw query string.

    Args:
        url: The URL as a string.
        scope: An ASGI HTTP or websocket scope to build the URL from.

    Raises:
        ValueError: If both ``url`` and ``scope`` are given.
    """

    __slots__ = ("_parts", "_url")

    def __init__(self, url: str = "", scope: Scope | None = None) -> None:
        if scope is not None:
            if url:
                raise ValueError(f"URL() got both url={url!r} and a scope. Pass only one of them.")
            url = _scope_origin(scope) + _quote_path(_scope_path(scope))
            query: bytes = scope.get("query_string", b"")
            if query:
                url += "?" + (
                    query.decode("ascii") if query.isascii() else quote(query, safe=_QUERY_SAFE)
                )
        self._url = url
        self._parts: SplitResult | None = None

    @property
    def components(self) -> SplitResult:
        """Return the parsed ``urllib.parse.SplitResult`` of this URL."""
        if self._parts is None:
            self._parts = urlsplit(self._url)
        return self._parts

    @property
    def scheme(self) -> str:
        """Return the scheme, for example ``"https"``."""
        return self.components.scheme

    @property
    def netloc(self) -> str:
        """Return the network location: ``[user[:password]@]host[:port]``."""
        return self.components.netloc

    @property
    def path(self) -> str:
        """Return the percent-encoded path, for example ``"/caf%C3%A9"``."""
        return self.components.path

    @property
    def query(self) -> str:
        """Return the query string without the leading ``?``."""
        return self.components.query

    @property
    def fragment(self) -> str:
        """Return the fragment without the leading ``#``."""
        return self.components.fragment

    @property
    def username(self) -> str | None:
        """Return the user name of the netloc, if any."""
        return self.components.username

    @property
    def password(self) -> str | None:
        """Return the password of the netloc, if any."""
        return self.components.password

    @property
    def hostname(self) -> str | None:
        """Return the host name, lowercased and without brackets or port."""
        return self.components.hostname

    @property
    def port(self) -> int | None:
        """Return the explicit port, or ``None`` when the URL has none."""
        return self.components.port

    @property
    def is_secure(self) -> bool:
        """Return whether the scheme is ``https`` or ``wss``."""
        return self.scheme in _SECURE_SCHEMES

    def replace(
        self,
        *,
        scheme: str | None = None,
        netloc: str | None = None,
        path: str | None = None,
        query: str | None = None,
        fragment: str | None = None,
        hostname: str | None = None,
        port: int | None = _MISSING,
        username: str | None = _MISSING,
        password: str | None = _MISSING,
    ) -> URL:
        """Return a copy of this URL with some components replaced.

        ``hostname``, ``port``, ``username`` and ``password`` rebuild the netloc;
        pass ``port=None`` to drop an explicit port.

        Args:
            scheme: The new scheme.
            netloc: The new network location (ignored if a netloc part is also given).
            path: The new, already percent-encoded, path.
            query: The new query string, without ``?``.
            fragment: The new fragment, without ``#``.
            hostname: The new host name.
            port: The new port, or ``None`` for none.
            username: The new user name, or ``None`` for none.
            password: The new password, or ``None`` for none.

        Returns:
            The new URL.
        """
        parts = self.components
        if (
            hostname is not None
            or port is not _MISSING
            or username is not _MISSING
            or (password is not _MISSING)
        ):
            if hostname is None:
                hostname = parts.netloc.rpartition("@")[2]
                if not hostname.endswith("]"):
                    hostname = hostname.rpartition(":")[0] or hostname
            elif ":" in hostname and not hostname.startswith("["):
                hostname = f"[{hostname}]"
            if port is _MISSING:
                port = parts.port
            if username is _MISSING:
                username = parts.username
            if password is _MISSING:
                password = parts.password
            netloc = hostname if port is None else f"{hostname}:{port}"
            if username is not None:
                userinfo = username if password is None else f"{username}:{password}"
                netloc = f"{userinfo}@{netloc}"
        new = SplitResult(
            scheme=parts.scheme if scheme is None else scheme,
            netloc=parts.netloc if netloc is None else netloc,
            path=parts.path if path is None else path,
            query=parts.query if query is None else query,
            fragment=parts.fragment if fragment is None else fragment,
        )
        return URL(new.geturl())

    def include_query_params(self, **params: Any) -> URL:
        """Return a copy with ``params`` set in the query, replacing same-named ones.

        Args:
            **params: Query parameters; values are converted with ``str()``.

        Returns:
            The new URL.
        """
        new = {key: str(value) for key, value in params.items()}
        kept = [(k, v) for k, v in parse_qsl(self.query, keep_blank_values=True) if k not in new]
        return self.replace(query=urlencode([*kept, *new.items()]))

    def replace_query_params(self, **params: Any) -> URL:
        """Return a copy whose query is exactly ``params``.

        Args:
            **params: Query parameters; values are converted with ``str()``.

        Returns:
            The new URL.
        """
        return self.replace(query=urlencode([(k, str(v)) for k, v in params.items()]))

    def remove_query_params(self, *keys: str) -> URL:
        """Return a copy without any query parameter named in ``keys``.

        Args:
            *keys: The parameter names to drop.

        Returns:
            The new URL.
        """
        drop = set(keys)
        kept = [(k, v) for k, v in parse_qsl(self.query, keep_blank_values=True) if k not in drop]
        return self.replace(query=urlencode(kept))

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, URL):
            return self._url == other._url
        if isinstance(other, str):
            return self._url == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._url)


class ImmutableMultiDict(Mapping[_K, _V], Generic[_K, _V]):
    """An immutable mapping that keeps every value given for a key.

    Mapping access (``d[key]``, ``get``, ``items``) sees the *last* value of
    each key, as Django and Starlette do; ``getlist`` and ``multi_items`` see
    all of them, in order.

    Args:
        items: Pairs, a mapping, or another multidict.
    """

    __slots__ = ("_dict", "_list")
    _dict: dict[_K, _V]
    _list: list[tuple[_K, _V]]

    def __init__(
        self,
        items: ImmutableMultiDict[_K, _V] | Mapping[_K, _V] | Iterable[tuple[_K, _V]] | None = None,
    ) -> None:
        pairs: list[tuple[_K, _V]]
        if items is None:
            pairs = []
        elif isinstance(items, ImmutableMultiDict):
            pairs = list(items._list)
        elif isinstance(items, Mapping):
            pairs = list(items.items())
        else:
            pairs = list(items)
        self._list = pairs
        self._dict = dict(pairs)

    def getlist(self, key: _K) -> list[_V]:
        """Return every value of ``key`` in order (an empty list if it is absent)."""
        return [value for k, value in self._list if k == key]

    def multi_items(self) -> list[tuple[_K, _V]]:
        """Return every ``(key, value)`` pair in order, including repeated keys."""
        return list(self._list)

    def __getitem__(self, key: _K) -> _V:
        return self._dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[_K]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def _grouped(self) -> dict[_K, list[_V]]:
        grouped: dict[_K, list[_V]] = {}
        for key, value in self._list:
            grouped.setdefault(key, []).append(value)
        return grouped

    def __eq__(self, other: object) -> bool:
        # Equal when every key has the same values in the same order; how the
        # keys interleave does not matter.
        if isinstance(other, ImmutableMultiDict):
            return self._grouped() == other._grouped()
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._list!r})"


class QueryParams(ImmutableMultiDict[str, str]):
    """The immutable multidict of a query string.

    ``QueryParams("a=1&a=2&b=")`` keeps blank values; percent escapes are
    decoded as UTF-8, with undecodable bytes replaced (a query string is never
    a reason to fail a request).

    Args:
        query: A query string (``str`` or raw ``bytes``), pairs or a mapping.
    """

    __slots__ = ()

    def __init__(
        self,
        query: str
        | bytes
        | ImmutableMultiDict[str, str]
        | Mapping[str, str]
        | Iterable[tuple[str, str]]
        | None = None,
    ) -> None:
        if isinstance(query, bytes):
            query = query.decode("utf-8", "replace")
        if isinstance(query, str):
            super().__init__(parse_qsl(query, keep_blank_values=True))
        else:
            super().__init__(query)

    def __str__(self) -> str:
        return urlencode(self._list)


class UploadFile:
    """An uploaded file, spooled in memory and then on disk under a server-made name.

    ``filename`` is the client's name for the file: metadata only, never used
    as a path. All methods are async; reads, writes and seeks on a file that
    lives on disk (or is about to be rolled over to disk) run in a worker
    thread, while small in-memory operations stay on the event loop.

    Args:
        file: The file object holding the data, usually a ``SpooledTemporaryFile``.
        size: The number of bytes written so far, if known.
        filename: The file name the client sent.
        headers: The part headers the client sent.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        size: int | None = None,
        filename: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.file = file
        self.size = size
        self.filename = filename
        self.headers = headers if headers is not None else Headers()

    @property
    def content_type(self) -> str | None:
        """Return the part's ``Content-Type``, if the client sent one."""
        return self.headers.get("content-type")

    @property
    def _in_memory(self) -> bool:
        rolled = getattr(self.file, "_rolled", None)
        if rolled is None:
            return isinstance(self.file, io.BytesIO)
        return not rolled

    def _will_roll(self, extra: int) -> bool:
        max_size: int = getattr(self.file, "_max_size", 0)
        return bool(max_size) and self.file.tell() + extra > max_size

    async def write(self, data: bytes) -> None:
        """Append ``data`` at the current position; a write that spills to disk runs in a thread.

        Args:
            data: The bytes to write.
        """
        if self.size is not None:
            self.size += len(data)
        if self._in_memory and not self._will_roll(len(data)):
            self.file.write(data)
        else:
            await asyncio.to_thread(self.file.write, data)

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (everything left when negative).

        Args:
            size: The maximum number of bytes to read.

        Returns:
            The bytes read; ``b""`` at the end of the file.
        """
        if self._in_memory:
            return self.file.read(size)
        return await asyncio.to_thread(self.file.read, size)

    async def seek(self, offset: int) -> None:
        """Move to byte ``offset`` from the start of the file.

        Args:
            offset: The absolute position.
        """
        if self._in_memory:
            self.file.seek(offset)
        else:
            await asyncio.to_thread(self.file.seek, offset)

    async def close(self) -> None:
        """Close the file; a spooled temporary file on disk is deleted."""
        if self._in_memory:
            self.file.close()
        else:
            await asyncio.to_thread(self.file.close)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(filename={self.filename!r}, size={self.size!r}, "
            f"content_type={self.content_type!r})"
        )

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Let pydantic models declare ``UploadFile`` fields (an instance check; binary in docs)."""
        from pydantic_core import core_schema  # reached only by code already using pydantic

        binary = {"pydantic_js_functions": [lambda *_: {"type": "string", "format": "binary"}]}
        return core_schema.is_instance_schema(cls, metadata=binary)


class FormData(ImmutableMultiDict[str, str | UploadFile]):
    """The parsed fields of a form: text values as ``str``, files as ``UploadFile``.

    Args:
        items: Pairs, a mapping, or another multidict.
    """

    __slots__ = ()

    async def close(self) -> None:
        """Close every uploaded file, deleting any temporary files on disk."""
        for _, value in self._list:
            if isinstance(value, UploadFile):
                await value.close()


@functools.lru_cache(maxsize=512)
def _encode_name(key: str) -> bytes:
    # Cached: an app sets the same few header names over and over.
    if not _TOKEN_RE.fullmatch(key):
        raise ValueError(f"Invalid header name {key!r}. Use an RFC 9110 token such as 'X-Custom'.")
    return key.lower().encode("latin-1")


def encode_header_value(value: str) -> bytes:
    """Return a header value as latin-1 bytes, refusing CR, LF, NUL and other characters.

    Raises:
        ValueError: Naming the value, when it could inject headers or is not latin-1.
    """
    if _FORBIDDEN_VALUE_CHARS.search(value):
        raise ValueError(
            f"Invalid header value {value!r}: CR, LF and NUL are not allowed. "
            "Remove them; they would let a value inject extra headers."
        )
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"Header value {value!r} is not latin-1. Percent-encode it (RFC 8187) first."
        ) from None


class Headers(Mapping[str, str]):
    """Immutable, case-insensitive, multi-valued HTTP headers.

    ``headers["content-type"]`` and ``get()`` return the first value of a
    name; ``getlist()`` returns all of them. ``keys()``, ``values()`` and
    ``items()`` list every header line, repeated names included, as
    lowercased latin-1 strings. ``raw`` is the underlying ASGI list.

    Args:
        raw: ASGI ``[(name, value)]`` byte pairs with lowercase names (a
            ``Mapping[str, str]`` is also accepted here, as for ``headers``).
        scope: An ASGI scope whose ``headers`` to use.
        headers: A mapping of header names to values.

    Raises:
        ValueError: If more than one source is given, or a header is invalid.
    """

    __slots__ = ("_list",)

    def __init__(
        self,
        raw: list[tuple[bytes, bytes]] | Mapping[str, str] | None = None,
        scope: Scope | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(raw, Mapping):
            if headers is not None:
                raise ValueError("Headers() got two mappings. Pass only one source of headers.")
            raw, headers = None, raw
        if (raw is not None) + (scope is not None) + (headers is not None) > 1:
            raise ValueError("Headers() accepts only one of raw, scope and headers.")
        self._list: list[tuple[bytes, bytes]]
        if raw is not None:
            # ASGI requires lowercase names; normalise in place so a shared list stays shared.
            for i, (key, value) in enumerate(raw):
                if not key.islower() and key != key.lower():
                    raw[i] = (key.lower(), value)
            self._list = raw
        elif scope is not None:
            scope_headers = scope["headers"]
            if not isinstance(scope_headers, list):
                scope_headers = scope["headers"] = list(scope_headers)
            self._list = scope_headers
        elif headers is not None:
            self._list = [(_encode_name(k), encode_header_value(v)) for k, v in headers.items()]
        else:
            self._list = []

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """Return the underlying list of ``(name, value)`` byte pairs."""
        return self._list

    def keys(self) -> list[str]:  # type: ignore[override]
        """Return every header name, repeated names included."""
        return [key.decode("latin-1") for key, _ in self._list]

    def values(self) -> list[str]:  # type: ignore[override]
        """Return every header value, in order."""
        return [value.decode("latin-1") for _, value in self._list]

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Return every ``(name, value)`` header line, in order."""
        return [(key.decode("latin-1"), value.decode("latin-1")) for key, value in self._list]

    def getlist(self, key: str) -> list[str]:
        """Return every value of the header ``key`` (case-insensitive), in order."""
        name = key.lower().encode("latin-1")
        return [value.decode("latin-1") for k, value in self._list if k == name]

    @overload
    def get(self, key: str, /) -> str | None: ...

    @overload
    def get(self, key: str, /, default: str | _T) -> str | _T: ...

    def get(self, key: str, /, default: object = None) -> object:
        """Return the first value of the header ``key`` (case-insensitive), or ``default``."""
        name = key.lower().encode("latin-1")
        for k, value in self._list:
            if k == name:
                return value.decode("latin-1")
        return default

    def mutablecopy(self) -> MutableHeaders:
        """Return a ``MutableHeaders`` holding a copy of these headers."""
        return MutableHeaders(raw=list(self._list))

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        for k, value in self._list:
            if k == name:
                return value.decode("latin-1")
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(k == name for k, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._list)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return sorted(self._list) == sorted(other._list)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items()!r})"


class MutableHeaders(Headers):
    """Case-insensitive, multi-valued headers that can be changed in place.

    Built with ``raw=`` or ``scope=``, it edits that very list, which is how
    middleware rewrites the headers of a request or of a ``http.response.start``
    message. Values are checked: CR, LF and NUL are refused, so no value can
    smuggle in an extra header.
    """

    __slots__ = ()

    def __setitem__(self, key: str, value: str) -> None:
        """Set ``key`` to the single value ``value``, replacing every existing value."""
        name = _encode_name(key)
        encoded = encode_header_value(value)
        found = [i for i, (k, _) in enumerate(self._list) if k == name]
        if not found:
            self._list.append((name, encoded))
            return
        self._list[found[0]] = (name, encoded)
        for i in reversed(found[1:]):
            del self._list[i]

    def __delitem__(self, key: str) -> None:
        """Remove every value of ``key``; removing an absent header does nothing."""
        name = key.lower().encode("latin-1")
        self._list[:] = [(k, v) for k, v in self._list if k != name]

    def append(self, key: str, value: str) -> None:
        """Add a header line, keeping any existing values of ``key`` (as for ``Set-Cookie``)."""
        self._list.append((_encode_name(key), encode_header_value(value)))

    def setdefault(self, key: str, value: str) -> str:
        """Set ``key`` to ``value`` unless present; return the header's (first) value."""
        current = self.get(key)
        if current is not None:
            return current
        self.append(key, value)
        return value

    def update(self, other: Mapping[str, str] | None = None, /, **kwargs: str) -> None:
        """Set every header of ``other`` (and of ``kwargs``), replacing existing values."""
        if other is not None:
            for key, value in other.items():
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def add_vary_header(self, vary: str) -> None:
        """Add the names in ``vary`` to the ``Vary`` header, without duplicates."""
        existing = [v.strip() for v in (self.get("vary") or "").split(",") if v.strip()]
        seen = {v.lower() for v in existing}
        for name in (v.strip() for v in vary.split(",")):
            if name and name.lower() not in seen:
                existing.append(name)
                seen.add(name.lower())
        if existing:
            self["vary"] = ", ".join(existing)


def add_vary_to_raw(headers: list[tuple[bytes, bytes]], field: bytes) -> None:
    """Add ``field`` to the ``Vary`` header of a raw ASGI header list, unless already named.

    Middleware edit ``http.response.start`` headers as raw lists; this keeps an
    existing ``Vary`` (and a ``Vary: *``) intact instead of adding a second line.
    """
    for index, (key, value) in enumerate(headers):
        if key.lower() == b"vary":
            names = {part.strip().lower() for part in value.split(b",")}
            if field.lower() not in names and b"*" not in names:
                headers[index] = (key, value + b", " + field)
            return
    headers.append((b"vary", field))


class State:
    """An attribute bag: ``state.db = pool`` then ``state.db``.

    Args:
        state: The dict to store attributes in (shared, not copied).
    """

    __slots__ = ("_state",)

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "_state", {} if state is None else state)

    def __setattr__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __getattr__(self, key: str) -> Any:
        if key == "_state":
            raise AttributeError(key)
        try:
            return self._state[key]
        except KeyError:
            raise AttributeError(
                f"State has no attribute {key!r}. Set it first, for example in a startup hook."
            ) from None

    def __delattr__(self, key: str) -> None:
        try:
            del self._state[key]
        except KeyError:
            raise AttributeError(f"State has no attribute {key!r} to delete.") from None

    def __contains__(self, key: object) -> bool:
        return key in self._state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._state!r})"
