"""Limits on what one GraphQL request may ask for: depth, cost, aliases, introspection.

A public GraphQL endpoint lets any client write the query, so the server
must bound the work one request can cause before running it. The checks here
run after GraphQL validation, on the operation about to execute (fragments
expanded), and fail the request with a GraphQL error naming the limit, so a
too-expensive query is refused in microseconds instead of holding a worker:

- depth: the deepest field nesting (``posts { author { posts { ... } } }``);
- cost: every field costs 1, and a list field multiplies what it selects by
  its ``first``/``last`` argument, or by ``default_list_size`` when it has
  none (a Relay ``edges`` list is bounded by its connection's ``first``, so it
  does not multiply again);
- aliases: the number of aliased fields (one field asked for a thousand times
  under different aliases is the classic amplification attack);
- introspection: ``__schema`` and ``__type`` are refused unless allowed (by
  default only in debug); ``__typename`` is always allowed.

Introspection fields are not counted towards depth or cost: GraphiQL's own
schema query is deep but bounded by the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.type import GraphQLInterfaceType, GraphQLObjectType

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Mapping

    from graphql import (
        FragmentDefinitionNode,
        GraphQLNamedType,
        GraphQLSchema,
        OperationDefinitionNode,
        SelectionSetNode,
    )

__all__ = ("GraphQLLimits", "check_limits")

_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
_PAGE_ARGUMENTS = ("first", "last")


@dataclass(frozen=True, slots=True)
class GraphQLLimits:
    """Bounds on one GraphQL request; ``None`` turns a bound off.

    Attributes:
        max_depth: The deepest field nesting allowed.
        max_cost: The largest cost allowed (see the module docs for the measure).
        max_aliases: The most aliased fields in one operation.
        default_list_size: The multiplier of a list field without ``first``/``last``.
        max_batch_size: The most operations in one batched POST (batching is
            off unless ``GraphQL(batch=True)``).
        max_query_length: The longest query text accepted, in characters.
        timeout: Seconds one operation may run before it is cancelled with an error.
    """

    max_depth: int | None = 12
    max_cost: int | None = 10_000
    max_aliases: int | None = 30
    default_list_size: int = 20
    max_batch_size: int = 10
    max_query_length: int | None = 100_000
    timeout: float | None = 30.0

    def __post_init__(self) -> None:
        for name in ("max_depth", "max_cost", "max_aliases", "max_query_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ImproperlyConfigured(
                    f"GraphQLLimits({name}={value!r}) must be a positive integer or None."
                )
        if self.default_list_size < 1 or self.max_batch_size < 1:
            raise ImproperlyConfigured(
                "GraphQLLimits default_list_size and max_batch_size must be at least 1."
            )


@dataclass
class _Measure:
    depth: int = 0
    cost: int = 0
    aliases: int = 0


def check_limits(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    limits: GraphQLLimits,
    *,
    introspection: bool,
) -> list[GraphQLError]:
    """Return the errors for every limit ``operation`` exceeds (empty when it is within them).

    Args:
        schema: The executable schema.
        operation: The operation to run (already validated).
        fragments: The document's fragments by name.
        variables: The request's raw variables (for ``first: $n``).
        limits: The bounds.
        introspection: Whether ``__schema``/``__type`` are allowed.
    """
    root = schema.get_root_type(operation.operation)
    measure = _Measure()
    errors: list[GraphQLError] = []
    walker = _Walker(schema, fragments, variables, limits, introspection, measure, errors)
    if root is not None:
        measure.cost = walker.selection_cost(operation.selection_set, root, depth=1)
    if limits.max_depth is not None and measure.depth > limits.max_depth:
        errors.append(
            _limit_error(
                f"Query depth {measure.depth} exceeds the limit of {limits.max_depth}. "
                "Ask for fewer nested levels.",
                "DEPTH_LIMIT_EXCEEDED",
            )
        )
    if limits.max_cost is not None and measure.cost > limits.max_cost:
        errors.append(
            _limit_error(
                f"Query cost {measure.cost} exceeds the limit of {limits.max_cost}. "
                "Ask for fewer items per list (first/last) or fewer nested lists.",
                "COST_LIMIT_EXCEEDED",
            )
        )
    if limits.max_aliases is not None and measure.aliases > limits.max_aliases:
        errors.append(
            _limit_error(
                f"The query uses {measure.aliases} aliases, over the limit of "
                f"{limits.max_aliases}. Use fewer aliased fields.",
                "ALIAS_LIMIT_EXCEEDED",
            )
        )
    return errors


def _limit_error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class _Walker:
    """Walk an operation's selections with their schema types, expanding fragments."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        limits: GraphQLLimits,
        introspection: bool,
        measure: _Measure,
        errors: list[GraphQLError],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        self.introspection = introspection
        self.measure = measure
        self.errors = errors
        # Validation rejects fragment cycles, but never trust that to bound recursion.
        self.active: set[str] = set()

    def selection_cost(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, depth: int
    ) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field_cost(selection, parent, depth)
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    self.schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                total += self.selection_cost(selection.selection_set, condition or parent, depth)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in self.active:
                    continue
                self.active.add(name)
                condition = self.schema.get_type(fragment.type_condition.name.value)
                total += self.selection_cost(fragment.selection_set, condition or parent, depth)
                self.active.discard(name)
        return total

    def field_cost(self, node: FieldNode, parent: GraphQLNamedType, depth: int) -> int:
        name = node.name.value
        if node.alias is not None:
            self.measure.aliases += 1
        if name.startswith("__"):
            if name in _INTROSPECTION_ROOTS and not self.introspection:
                self.errors.append(
                    GraphQLError(
                        "GraphQL introspection is disabled on this server. It is on in debug; "
                        "GraphQL(introspection=True) turns it on always.",
                        [node],
                        extensions={"code": "INTROSPECTION_DISABLED"},
                    )
                )
            return 0
        self.measure.depth = max(self.measure.depth, depth)
        if node.selection_set is None:
            return 1
        field_type: Any = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(name)
            field_type = definition.type if definition is not None else None
        child = get_named_type(field_type) if field_type is not None else parent
        inner = self.selection_cost(node.selection_set, child, depth + 1)
        return 1 + self.multiplier(node, field_type) * inner

    def multiplier(self, node: FieldNode, field_type: Any) -> int:
        for argument in node.arguments or ():
            if argument.name.value not in _PAGE_ARGUMENTS:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(int(value.value), 1)
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                if isinstance(given, int) and not isinstance(given, bool):
                    return max(given, 1)
        nullable = get_nullable_type(field_type) if field_type is not None else None
        if nullable is not None and is_list_type(nullable):
            if node.name.value == "edges":
                return 1
            return self.limits.default_list_size
        return 1
