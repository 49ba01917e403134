"""Building model instances (covet.db.instances): each model's generated ``__init__``.

No database needed. The generated ``__init__`` must build exactly what the general
path (``init_from_kwargs``, the code ``Model.__init__`` always ran) builds, for
every kind of keyword, and step aside wherever the model's own code is involved.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import pytest

from covet.db import Model, fields
from covet.db.instances import init_from_kwargs
from covet.db.models import ModelState, isolated_models
from tests.db.models import Author, Defaults, Keyed, Post


def _general(model: type[Model], **kwargs: Any) -> Model:
    """Build ``model(**kwargs)`` the general way, without any fast path."""
    obj = object.__new__(model)
    init_from_kwargs(obj, kwargs)
    return obj


def _outcome(build: Any) -> Any:
    """Return what ``build()`` gives: the instance's values and state, or its error."""
    try:
        obj = build()
    except TypeError as exc:
        return TypeError, str(exc)
    values = {k: v for k, v in obj.__dict__.items() if k != "_state"}
    state = obj.__dict__["_state"]
    return list(obj.__dict__), values, type(state), state.adding, state.db, state.cache


ANN = Author(name="Ann", email="ann@example.com", id=5)


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        (Post, {}),
        (Post, {"title": "t", "author_id": 7, "views": None}),
        (Post, {"author": ANN, "title": "t"}),
        (Post, {"author": None, "editor": ANN}),
        (Post, {"author_id": 7, "author": ANN}),  # both: the general path's error
        (Post, {"pk": 3, "title": "t"}),
        (Post, {"id": 2, "pk": 3}),
        (Post, {"title": "t", "colour": "red", "x": 1}),
        (Post, {"title": "t", "tags": []}),
        (Post, {"title": "t", "tags": [], "colour": "red"}),
        (Post, {"self": 1, "kw": 2}),  # names the generated code must not confuse with its own
        (Keyed, {"pk": "k", "label": "l"}),
        (Keyed, {"code": "k", "pk": "p"}),
        (Defaults, {"counter": 1, "state": "live"}),
    ],
)
def test_the_generated_init_builds_what_the_general_path_builds(
    model: type[Model], kwargs: dict[str, Any]
) -> None:
    model(title="warm-up") if model is Post else model()  # installs the generated __init__
    assert "__init__" in vars(model)
    fast, general = _outcome(lambda: model(**kwargs)), _outcome(lambda: _general(model, **kwargs))
    if model is Defaults:  # token is a fresh uuid4() per instance
        fast[1].pop("token"), general[1].pop("token")
    assert fast == general


def test_a_relation_given_by_object_is_cached_on_the_new_instance() -> None:
    post = Post(title="t", author=ANN)
    assert post.author_id == 5 and post.author is ANN
    assert post._state.cache == {"author": ANN}


def test_each_column_is_a_keyword_only_parameter() -> None:
    Post(title="t")
    params = inspect.signature(Post).parameters
    columns = [f.attname for f in Post._meta.concrete_fields]
    assert [name for name, p in params.items() if p.kind is p.KEYWORD_ONLY] == columns
    assert params["views"].default == 0 and params["title"].default is None
    assert Post.__init__.__qualname__ == "Post.__init__"
    with pytest.raises(TypeError, match=r"Post.__init__\(\) takes 1 positional argument"):
        Post("t")  # type: ignore[call-arg]


def test_callable_defaults_are_called_once_per_instance_and_only_when_needed() -> None:
    counter = itertools.count(1)
    calls: list[int] = []

    def next_number() -> int:
        calls.append(1)
        return next(counter)

    with isolated_models():

        class Ticket(Model):
            number = fields.IntegerField(default=next_number)
            tags = fields.JSONField(default=list)
            note = fields.CharField(max_length=10, default="")

        first, second = Ticket(), Ticket(note="x")
        assert "__init__" in vars(Ticket)
        given = Ticket(number=99, tags=["a"])
        assert (first.number, second.number, given.number) == (1, 2, 99)
        assert len(calls) == 2
        assert first.tags == [] and first.tags is not second.tags
        assert (first.note, second.note) == ("", "x")
        assert first._state is not second._state
        assert type(first._state) is ModelState and first._state.adding is True


def test_a_field_added_after_the_first_instance_gets_a_new_init() -> None:
    with isolated_models():

        class Growing(Model):
            name = fields.CharField(max_length=10)

        Growing(name="a")
        old_init = vars(Growing)["__init__"]
        fields.IntegerField(default=4).contribute_to_class(Growing, "size")
        assert "__init__" not in vars(Growing)  # dropped with the model's cached plans
        assert Growing(name="b").size == 4
        assert Growing(name="c", size=2).size == 2
        assert vars(Growing)["__init__"] is not old_init


def test_an_init_of_the_models_own_is_kept_and_reaches_the_fields() -> None:
    with isolated_models():

        class Greeting(Model):
            text = fields.CharField(max_length=10)

            def __init__(self, **kwargs: Any) -> None:
                kwargs.setdefault("text", "hi")
                super().__init__(**kwargs)

        class Polite(Model):
            def __init__(self, **kwargs: Any) -> None:
                kwargs.setdefault("text", "please")
                super().__init__(**kwargs)

            class Meta:
                abstract = True

        class Request(Polite):
            text = fields.CharField(max_length=10)

        own = vars(Greeting)["__init__"]
        assert Greeting().text == "hi" and Greeting(text="yo").text == "yo"
        assert vars(Greeting)["__init__"] is own
        assert Request().text == "please" and "__init__" not in vars(Request)
        with pytest.raises(TypeError, match="unexpected keyword"):
            Greeting(colour="red")


def test_a_model_with_its_own_setattr_is_built_without_calling_it() -> None:
    class Audited:
        def __setattr__(self, name: str, value: Any) -> None:
            raise AssertionError("Model.__init__ fills __dict__ directly")

    with isolated_models():

        class Ledger(Audited, Model):
            amount = fields.IntegerField(default=0)

        assert Ledger(amount=3).amount == 3 and Ledger().amount == 0
        assert "__init__" not in vars(Ledger)
