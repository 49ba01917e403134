"""The admin's request handlers: login, index, list, add, change, delete, lookup, audit log.

Every handler first checks the user: anonymous visitors are sent to the admin
login page, logged-in users who are not active staff get 403, and each model
page checks the model permission it needs (403 without it). Bad query input
(a filter value, a sort column, a cursor) is a 400, never a 500.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from covet.admin.forms import AdminForm, json_safe
from covet.admin.inlines import InlineSet, bind_inlines, build_inlines, check_inlines
from covet.admin.models import ADDITION, CHANGE, DELETION, AdminLogEntry
from covet.auth import authenticate, login, logout, safe_redirect_url
from covet.db import IntegrityError, ProtectedError, ValidationError, transaction
from covet.db.fields import CASCADE, PROTECT, SET_NULL, ForeignKey
from covet.db.pagination import InvalidPage, KeysetPaginator
from covet.exceptions import HTTPException, ImproperlyConfigured
from covet.flash import flash
from covet.responses import JSONResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from covet.admin.options import ModelAdmin
    from covet.admin.site import Admin
    from covet.db.models import Model
    from covet.db.queryset import QuerySet
    from covet.requests import Request

__all__ = ("RESERVED_NAMES", "add_routes")

_STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC = {
    "admin.css": "text/css",
    "admin.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
#: Path segments the admin's own pages use: no model may be registered under them.
RESERVED_NAMES = frozenset({"login", "logout", "log", "static"})
_CASCADE_DEPTH = 3
_CASCADE_EXAMPLES = 5
_LOOKUP_LIMIT = 20


def _user(request: Request) -> Any:
    try:
        return request.scope["user"]
    except KeyError:
        raise ImproperlyConfigured(
            "The admin needs AuthenticationMiddleware (request.user). Add it with "
            "app.add_middleware(AuthenticationMiddleware, user_model=User)."
        ) from None


def _is_staff(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
    )


def _require(model_admin: ModelAdmin, user: Any, action: str) -> None:
    if not model_admin.has_permission(user, action):
        raise HTTPException(
            403, f"You do not have the {model_admin.permission_name(action)!r} permission."
        )


async def _load(model_admin: ModelAdmin, request: Request, pk: str) -> Model:
    pk_field = model_admin.meta.pk
    try:
        value = pk_field.to_python(pk)
    except (ValidationError, ValueError, TypeError):
        raise HTTPException(404, f"No {model_admin.verbose_name} with key {pk!r}.") from None
    obj: Model | None = await model_admin.get_queryset(request).filter(pk=value).first()
    if obj is None:
        raise HTTPException(404, f"No {model_admin.verbose_name} with key {pk!r}.")
    return obj


async def _log(
    request: Request, model_admin: ModelAdmin, obj: Model, action: str, changes: dict[str, Any]
) -> None:
    user = _user(request)
    await AdminLogEntry.objects.create(
        user_id=str(user.pk),
        user_repr=user.get_username()[:254],
        action=action,
        model=model_admin.name,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        changes=changes,
    )


async def _check_foreign_keys(form: AdminForm) -> None:
    """Refuse a foreign key naming a row that does not exist; remember the others' text."""
    for f in form.editable:
        if not isinstance(f, ForeignKey) or form.cleaned.get(f.attname) is None:
            continue
        target = await f.related_model.objects.filter(pk=form.cleaned[f.attname]).first()
        if target is None:
            form.errors.add(f.name, "Select a valid choice: that row does not exist.")
        else:
            form.related_reprs[f.name] = str(target)


async def _fk_reprs(form: AdminForm, obj: Model | None) -> None:
    if obj is None:
        return
    for f in form.fields:
        if isinstance(f, ForeignKey) and getattr(obj, f.attname) is not None:
            target = await f.related_model.objects.filter(pk=getattr(obj, f.attname)).first()
            form.related_reprs[f.name] = "" if target is None else str(target)


async def _cascade(objs: QuerySet[Any], model: type[Model], depth: int = 0) -> list[dict[str, Any]]:
    """Return what deleting ``objs`` does to the rows that reference them, recursively."""
    out: list[dict[str, Any]] = []
    pks = objs.values_list("pk", flat=True)
    for rel in model._meta.reverse.values():
        fk = rel.field
        if rel.many_to_many or not isinstance(fk, ForeignKey):
            continue
        children = fk.model.objects.filter(**{f"{fk.name}__in": pks})
        count = await children.count()
        if not count:
            continue
        effect = {CASCADE: "deleted", SET_NULL: "unlinked", PROTECT: "protected"}.get(
            fk.on_delete, "restricted"
        )
        examples = [str(o) for o in await children.order_by("pk")[:_CASCADE_EXAMPLES]]
        entry = {
            "model": fk.model.__name__,
            "field": fk.name,
            "count": count,
            "effect": effect,
            "examples": examples,
            "children": [],
        }
        if effect == "deleted" and depth < _CASCADE_DEPTH:
            entry["children"] = await _cascade(children, fk.model, depth + 1)
        out.append(entry)
    return out


def add_routes(site: Admin) -> None:
    """Add the admin's routes under ``site.path`` to ``site.app``."""
    base = site.path

    def staff_or_redirect(request: Request) -> Any:
        user = _user(request)
        if not getattr(user, "is_authenticated", False):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(site.url("login", next=target), status_code=303)
        if not _is_staff(user):
            raise HTTPException(403, "The admin is for staff users only.")
        return None

    async def login_page(request: Request) -> Any:
        next_url = safe_redirect_url(request, request.query_params.get("next"), site.url())
        error = ""
        status = 200
        if request.method == "POST":
            form = await request.form()
            name, password = form.get("username"), form.get("password")
            next_url = safe_redirect_url(request, str(form.get("next") or ""), site.url())
            user = None
            if isinstance(name, str) and isinstance(password, str):
                user = await authenticate(request, username=name, password=password)
            if user is not None and _is_staff(user):
                await login(request, user)
                return RedirectResponse(next_url, status_code=303)
            error = "Enter the login and password of a staff account."
            status = 400
        return site.render(
            request, "admin/login.html", {"next": next_url, "error": error}, status_code=status
        )

    async def logout_page(request: Request) -> Any:
        await logout(request)
        return RedirectResponse(site.url("login"), status_code=303)

    async def index(request: Request) -> Any:
        if (deny := staff_or_redirect(request)) is not None:
            return deny
        user = _user(request)
        visible = {ma.name for ma in site.visible_models(user)}
        recent = list(await AdminLogEntry.objects.filter(model__in=visible or [""])[:10])
        return site.render(request, "admin/index.html", {"recent": recent})

    def order_for(model_admin: ModelAdmin, request: Request) -> tuple[list[str], str]:
        sort = request.query_params.get("o", "")
        if not sort:
            return list(model_admin.ordering), ""
        name = sort.removeprefix("-")
        if name not in model_admin.list_display or not model_admin.sortable(name):
            raise HTTPException(400, f"Cannot sort by {sort!r}.")
        return [sort], sort

    def filtered(model_admin: ModelAdmin, request: Request) -> tuple[QuerySet[Any], dict[str, Any]]:
        qs = model_admin.get_queryset(request)
        params = request.query_params
        term = params.get("q", "")
        try:
            qs = model_admin.search(qs, term)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        active: dict[str, str] = {}
        for name in model_admin.list_filter:
            value = params.get(name)
            if value in (None, ""):
                continue
            field = model_admin.meta.fields_map[name]
            try:
                qs = model_admin.apply_filter(qs, field, value)
            except (ValueError, ValidationError) as exc:
                raise HTTPException(400, f"Invalid filter {name}={value!r}: {exc}") from None
            active[name] = value
        return qs, {"q": term, **active}

    async def changelist(request: Request, model: str) -> Any:
        if (deny := staff_or_redirect(request)) is not None:
            return deny
        model_admin = site.model_admin(model)
        user = _user(request)
        _require(model_admin, user, "view")
        if request.method == "POST":
            return await bulk_action(request, model_admin)
        qs, state = filtered(model_admin, request)
        order, sort = order_for(model_admin, request)
        paginator = KeysetPaginator(qs, model_admin.list_per_page, order_by=order)
        params = request.query_params
        try:
            page = await paginator.page(after=params.get("after"), before=params.get("before"))
        except InvalidPage as exc:
            raise HTTPException(exc.status_code, str(exc)) from None
        limit = model_admin.count_limit
        # Counting stops past the limit: one bounded query even on a huge table.
        count = await qs.order_by().values_list("pk", flat=True)[: limit + 1].count()
        columns = [
            {
                "name": c,
                "label": "Object" if c == "__str__" else c.replace("_", " ").capitalize(),
                "sortable": c in model_admin.meta.fields_map and model_admin.sortable(c),
            }
            for c in model_admin.list_display
        ]
        rows = [
            (obj.pk, [model_admin.display(obj, c) for c in model_admin.list_display])
            for obj in page
        ]
        filters = []
        for name in model_admin.list_filter:
            field = model_admin.meta.fields_map[name]
            choices = (
                []
                if isinstance(field, ForeignKey)
                else model_admin.filter_choices(field, state.get(name))
            )
            filters.append(
                {
                    "name": name,
                    "label": name.replace("_", " ").capitalize(),
                    "fk": isinstance(field, ForeignKey),
                    "target": field.related_model._meta.model_name
                    if isinstance(field, ForeignKey)
                    else "",
                    "value": state.get(name, ""),
                    "choices": choices,
                }
            )
        actions = (
            [("delete_selected", "Delete selected")]
            if model_admin.has_permission(user, "delete")
            else []
        )
        actions += [
            (a.name, a.label)
            for a in model_admin.action_list.values()
            if model_admin.has_permission(user, a.permission)
        ]
        return site.render(
            request,
            "admin/list.html",
            {
                "ma": model_admin,
                "columns": columns,
                "rows": rows,
                "page": page,
                "count": count,
                "count_limit": limit,
                "state": state,
                "sort": sort,
                "filters": filters,
                "actions": actions,
                "can_add": model_admin.has_permission(user, "add"),
            },
        )

    async def bulk_action(request: Request, model_admin: ModelAdmin) -> Any:
        form = await request.form()
        name = str(form.get("action") or "")
        selected = [v for v in form.getlist("selected") if isinstance(v, str)]
        user = _user(request)
        list_url = site.url(model_admin.name)
        pk_field = model_admin.meta.pk
        try:
            pks = [pk_field.to_python(v) for v in selected]
        except (ValidationError, ValueError, TypeError):
            raise HTTPException(400, "Invalid selection.") from None
        if not pks:
            flash(request, "Select at least one row first.", "warning")
            return RedirectResponse(list_url, status_code=303)
        qs = model_admin.get_queryset(request).filter(pk__in=pks)
        if name == "delete_selected":
            _require(model_admin, user, "delete")
            objs = await qs.order_by("pk")
            if form.get("confirm") != "yes":
                return site.render(
                    request,
                    "admin/delete.html",
                    {
                        "ma": model_admin,
                        "objects": objs,
                        "cascade": await _cascade(qs, model_admin.model),
                        "bulk": True,
                    },
                )
            try:
                async with transaction():
                    for obj in objs:
                        await _log(request, model_admin, obj, DELETION, _snapshot(model_admin, obj))
                    await qs.delete()
            except ProtectedError as exc:
                flash(request, str(exc), "error")
                return RedirectResponse(list_url, status_code=303)
            flash(request, f"Deleted {len(objs)} {model_admin.verbose_name} rows.", "success")
            return RedirectResponse(list_url, status_code=303)
        chosen = model_admin.action_list.get(name)
        if chosen is None:
            raise HTTPException(400, f"Unknown action {name!r}.")
        _require(model_admin, user, chosen.permission)
        # The admin cannot see inside an action: it logs which rows it ran on, and the
        # action's writes and the log entries commit (or roll back) together.
        async with transaction():
            for obj in await qs.order_by("pk"):
                await _log(request, model_admin, obj, CHANGE, {"action": [None, chosen.name]})
            message = await chosen.func(model_admin, request, qs)
        if message:
            flash(request, message, "success")
        return RedirectResponse(list_url, status_code=303)

    async def save_form(
        request: Request,
        model_admin: ModelAdmin,
        form: AdminForm,
        obj: Model,
        inlines: list[InlineSet] | None = None,
    ) -> bool:
        submitted = await request.form()
        inlines = inlines or []
        valid = form.bind(submitted)
        valid = bind_inlines(inlines, submitted) and valid
        if not valid:
            return False  # the database is asked only about values that passed their schema
        await _check_foreign_keys(form)
        await form.check_related()
        for inline in inlines:
            for row in inline.rows:
                if row.used and not row.delete:
                    await _check_foreign_keys(row.form)
        if form.errors or any(r.form.errors for i in inlines for r in i.rows):
            return False
        adding = obj.pk is None
        changes = form.apply(obj)
        try:
            obj.full_clean()
        except ValidationError as exc:
            form.add_model_errors(exc.error_dict)
            return False
        if not await check_inlines(inlines, obj):
            return False
        try:
            async with transaction():
                await obj.save()
                changes.update(await form.apply_m2m(obj))
                if adding or changes:
                    await _log(request, model_admin, obj, ADDITION if adding else CHANGE, changes)
                for inline in inlines:
                    await _save_inline(request, inline)
        except IntegrityError:
            form.add_model_errors(
                {"__all__": ["This would duplicate a row that must be unique, or break a link."]}
            )
            return False
        return True

    async def add_page(request: Request, model: str) -> Any:
        if (deny := staff_or_redirect(request)) is not None:
            return deny
        model_admin = site.model_admin(model)
        _require(model_admin, _user(request), "add")
        form = AdminForm(model_admin)
        # "Add" links from an inline pass the parent's key: ?article=3 fills that field.
        for f in form.editable:
            if isinstance(f, ForeignKey) and request.query_params.get(f.name):
                form.values[f.name] = request.query_params[f.name]
        obj = model_admin.model()
        if request.method == "POST":
            if await save_form(request, model_admin, form, obj):
                flash(request, f"Added {model_admin.verbose_name} “{obj}”.", "success")
                return RedirectResponse(site.url(model_admin.name), status_code=303)
            return site.render(
                request, "admin/form.html", _form_context(model_admin, form, None, True), 422
            )
        return site.render(request, "admin/form.html", _form_context(model_admin, form, None, True))

    async def change_page(request: Request, model: str, pk: str) -> Any:
        if (deny := staff_or_redirect(request)) is not None:
            return deny
        model_admin = site.model_admin(model)
        user = _user(request)
        _require(model_admin, user, "change" if request.method == "POST" else "view")
        obj = await _load(model_admin, request, pk)
        form = AdminForm(model_admin, obj)
        await _fk_reprs(form, obj)
        await form.load_related(obj)
        can_change = model_admin.has_permission(user, "change")
        inlines = await build_inlines(model_admin, site.registry, obj, user)
        if request.method == "POST":
            if await save_form(request, model_admin, form, obj, inlines):
                flash(request, f"Saved {model_admin.verbose_name} “{obj}”.", "success")
                return RedirectResponse(site.url(model_admin.name), status_code=303)
            context = _form_context(model_admin, form, obj, can_change)
            context["inlines"] = inlines
            return site.render(request, "admin/form.html", context, 422)
        context = _form_context(model_admin, form, obj, can_change)
        context["can_delete"] = model_admin.has_permission(user, "delete")
        context["inlines"] = inlines
        return site.render(request, "admin/form.html", context)

    async def delete_page(request: Request, model: str, pk: str) -> Any:
        if (deny := staff_or_redirect(request)) is not None:
            return deny
        model_admin = site.model_admin(model)
        _require(model_admin, _user(request), "delete")
        obj = await _load(model_admin, request, pk)
        qs = model_admin.model.objects.filter(pk=obj.pk)
        if request.method == "POST":
            try:
                async with transaction():
                    await _log(request, model_admin, obj, DELETION, _snapshot(model_admin, obj))
                    await qs.delete()
            except ProtectedError as exc:
                flash(request, str(exc), "error")
                return RedirectResponse(site.url(model_admin.name, obj.pk, "delete"), 303)
            flash(request, f"Deleted {model_admin.verbose_name} “{obj}”.", "success")
            return RedirectResponse(site.url(model_admin.name), status_code=303)
        context = {
            "ma": model_admin,
            "objects": [obj],
            "cascade": await _cascade(qs, model_admin.model),
            "bulk": False,
        }
        return site.render(request, "admin/delete.html", context)

    async def lookup(request: Request, model: str) -> Any:
        if (deny := staff_or_redirect(request)) is not None:
            return deny
        model_admin = site.model_admin(model)
        _require(model_admin, _user(request), "view")
        try:
            qs = model_admin.search(
                model_admin.model.objects.all(), request.query_params.get("q", "")
            )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        rows = await qs.order_by("pk")[:_LOOKUP_LIMIT]
        return JSONResponse({"results": [{"id": json_safe(o.pk), "text": str(o)} for o in rows]})

    async def audit_log(request: Request) -> Any:
        if (deny := staff_or_redirect(request)) is not None:
            return deny
        user = _user(request)
        visible = [ma.name for ma in site.visible_models(user)]
        qs = AdminLogEntry.objects.filter(model__in=visible or [""])
        params = request.query_params
        for key in ("model", "object_id"):
            if params.get(key):
                qs = qs.filter(**{key: params[key]})
        paginator = KeysetPaginator(qs, 50, order_by=["-id"])
        try:
            page = await paginator.page(after=params.get("after"), before=params.get("before"))
        except InvalidPage as exc:
            raise HTTPException(exc.status_code, str(exc)) from None
        state = {k: params.get(k, "") for k in ("model", "object_id")}
        return site.render(request, "admin/log.html", {"page": page, "state": state})

    async def static(request: Request, name: str) -> Any:
        if name not in _STATIC:
            raise HTTPException(404, f"No admin static file {name!r}.")
        body = (_STATIC_DIR / name).read_bytes()
        return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=3600"})

    pages: list[tuple[str, Any, list[str], str]] = [
        ("/login", login_page, ["GET", "POST"], "login"),
        ("/logout", logout_page, ["POST"], "logout"),
        ("/", index, ["GET"], "index"),
        ("/static/{name}", static, ["GET"], "static"),
        ("/log", audit_log, ["GET"], "log"),
        ("/{model}", changelist, ["GET", "POST"], "list"),
        ("/{model}/add", add_page, ["GET", "POST"], "add"),
        ("/{model}/lookup", lookup, ["GET"], "lookup"),
        ("/{model}/{pk}/change", change_page, ["GET", "POST"], "change"),
        ("/{model}/{pk}/delete", delete_page, ["GET", "POST"], "delete"),
    ]
    for path, handler, methods, name in pages:
        site.app.add_route(
            base + path, handler, methods=methods, name=f"admin:{name}", include_in_schema=False
        )


async def _save_inline(request: Request, inline: InlineSet) -> None:
    """Write one inline's deletions, changes and additions, each in the audit log."""
    for row in inline.rows:
        if row.delete and row.obj is not None:
            await _log(request, inline.admin, row.obj, DELETION, _snapshot(inline.admin, row.obj))
            await inline.admin.model.objects.filter(pk=row.obj.pk).delete()
        elif row.used and row.target is not None and (row.obj is None or row.changes):
            await row.target.save()
            action = ADDITION if row.obj is None else CHANGE
            await _log(request, inline.admin, row.target, action, row.changes)


def _snapshot(model_admin: ModelAdmin, obj: Model) -> dict[str, list[Any]]:
    """Return ``{field: [value, None]}``: what a deletion removed, for the audit log."""
    # The form's fields only: a user's password hash, excluded from the form, stays out.
    return {f.name: [json_safe(getattr(obj, f.attname)), None] for f in model_admin.form_fields()}


def _form_context(
    model_admin: ModelAdmin, form: AdminForm, obj: Model | None, editable: bool
) -> dict[str, Any]:
    return {"ma": model_admin, "form": form, "obj": obj, "editable": editable, "can_delete": False}
