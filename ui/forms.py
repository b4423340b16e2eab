"""One form helper for every save in the app: nothing typed is lost, a double tap saves once.

Why not `st.form(clear_on_submit=True)`: a second tap interrupts the first tap's
rerun, and the cleared form is what the second tap submits — the entry is lost
and a validation error appears instead. Here a form *instance* is a generation:
its widget keys and its idempotency token carry the generation number, so

- a rejected save leaves every field as typed, with the message beside the button;
- a double or triple tap submits the same values with the same token, and the
  service stores one entry (or the step has moved on and the tap is ignored);
- values changed after a save that was never confirmed go with a new token: they are
  a new entry, never answered with the earlier one;
- only a confirmed save moves to the next generation: a blank form, times back
  to "now", never the last set pre-filled.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeGuard, TypeVar, cast

import streamlit as st

from infusion.errors import ChairsideError, ConfirmationRequired, DatabaseBusy, DatabaseUnavailable, ValidationError
from ui.common import flash, show_error, show_flash

#: an object's address in its default repr: not part of what a field holds
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

#: after a save with other values was never confirmed: it may be in the record too
EARLIER_TRY = (
    "An earlier try of this form with other values was not confirmed and may be in the record too: "
    "check the entries and mark it entered in error if it is wrong."
)

#: the field names buttons were given (`submit`, `button_key`): a button is not a value the nurse typed
#: the tick box of `EntryForm.confirmation`: like a button, not one of the values `EntryForm.values` compares
CONFIRM_FIELD = "confirm_save"
_SUBMIT_NAMES: set[str] = {"submit", CONFIRM_FIELD}

T = TypeVar("T")
C = TypeVar("C")
V = TypeVar("V")


def _gen_key(name: str) -> str:
    return f"_form_gen_{name}"


def _msg_key(name: str) -> str:
    return f"_form_msg_{name}"


@dataclass(frozen=True)
class EntryForm:
    """One instance of a named form: widget keys, its idempotency token and its outcome message."""

    name: str
    generation: int

    def key(self, field: str) -> str:
        """The widget key of `field` in this instance (a new instance starts blank)."""
        return f"{self.name}__{self.generation}__{field}"

    @property
    def token(self) -> str:
        """The idempotency token of this instance: the same across reruns until a save is confirmed.

        A save of this instance that was never confirmed (its run was cut short after the service call,
        or the database was busy or unreachable) may have been stored under the token. Submitted again
        with the same values, it is the same entry: the token stays, and the service returns what it
        stored. Submitted with other values, it is another entry: a new token, so the service stores
        what is on the screen now instead of answering with the earlier values."""
        if self._token not in st.session_state:
            st.session_state[self._token] = uuid.uuid4().hex
        else:
            self._renew_if_changed()
        return str(st.session_state[self._token])

    @property
    def _token(self) -> str:
        return f"_form_token_{self.name}__{self.generation}"

    def _renew_if_changed(self) -> None:
        """A new token if a save of this instance began with other values than the fields hold now
        (whether the page reads the token before `save` or inside its action)."""
        tried = st.session_state.get(self._saving)
        if tried is None or self._token not in st.session_state:
            return
        now = self.values()
        if tried != now:
            st.session_state[self._token] = uuid.uuid4().hex
            st.session_state[self._saving] = now
            st.session_state[self._renewed] = True

    @property
    def _renewed(self) -> str:
        return f"_form_renewed_{self.name}__{self.generation}"

    @property
    def _saving(self) -> str:
        return f"_form_saving_{self.name}__{self.generation}"

    def values(self) -> str:
        """What this instance's fields hold now (its buttons left out), comparable across reruns."""
        prefix = f"{self.name}__{self.generation}__"
        held = sorted(
            (key, _ADDRESS.sub("", repr(st.session_state[key])))
            for key in (str(k) for k in st.session_state)
            if key.startswith(prefix)
            and key[len(prefix) :] not in _SUBMIT_NAMES
            and not key[len(prefix) :].startswith(CONFIRM_FIELD)
        )
        return repr(held)

    def choices(self, field: str, options: C) -> C:
        """A picker's options in this instance: today's, except while a save of this instance is under way.

        A second tap reruns the page while the first tap's save runs, or just after it before the form
        moved on. The item saved may have left the list by then, and a picker whose value is no longer an
        option falls back to its first option: another patient, saved with the first tap's token or, for
        a save without one, saved anew. So during a save the options the first tap chose from are kept:
        the second tap replays the same save, which the service stores once."""
        key = f"_form_choices_{self.name}__{self.generation}__{field}"
        if self._saving in st.session_state and key in st.session_state:
            return cast(C, st.session_state[key])
        st.session_state[key] = options
        return options

    def button_key(self, name: str) -> str:
        """The key of a plain `st.button` that belongs to this instance (a confirmation's buttons): like
        a submit button, it is not one of the values `values` compares."""
        _SUBMIT_NAMES.add(name)
        return self.key(name)

    def submit(self, label: str, *, name: str = "submit", **kwargs: Any) -> bool:
        """A submit button of this instance (`name` tells two buttons of one form apart)."""
        _SUBMIT_NAMES.add(name)
        return bool(st.form_submit_button(label, key=self.key(name), **kwargs))

    def save(
        self,
        action: Callable[[], T],
        success: str | Callable[[T], str],
        *,
        at_panel: bool = False,
        rerun: bool = True,
        confirmable: bool = False,
        where: str | None = None,
    ) -> T | None:
        """Run the service call; on a refusal show why right here and keep every field as typed.

        On success the form moves to a blank instance and the message shows beside
        it after the rerun (`at_panel=True`: at the top of the panel, for a step
        that replaces this form; `where`: the flash key a page shows it under, for a
        form the save closes).
        """
        # before the call: a rerun that stops this run after it replays the same values (see `token`)
        self._renew_if_changed()
        st.session_state[self._saving] = self.values()
        try:
            result = action()
        except ConfirmationRequired as error:
            if not confirmable:
                st.session_state.pop(self._saving, None)
                self._refused(error)
                return None
            # asked again beside the button (`confirmation`), with every field as typed
            st.session_state.pop(self._saving, None)
            st.session_state[self._asked] = (self.values(), error.flags)
            # a tick given to an earlier question is not an answer to this one
            for key in [k for k in st.session_state if str(k).startswith(self.key(CONFIRM_FIELD))]:
                del st.session_state[key]
            st.rerun()
        except ChairsideError as error:
            if not isinstance(error, (DatabaseBusy, DatabaseUnavailable)):
                # refused: the pickers show today's options again. Busy or unreachable: an earlier tap's
                # save may still commit, so its options stay for the tap that tries again
                st.session_state.pop(self._saving, None)
            self._refused(error)
            return None
        message = success(result) if callable(success) else success
        if st.session_state.get(self._renewed):
            message = f"{message} {EARLIER_TRY}"
        flash(message, where or ("_flash" if at_panel else _msg_key(self.name)))
        done(self.name)
        if rerun:
            st.rerun()
        return result

    @property
    def _asked(self) -> str:
        return f"_form_asked_{self.name}__{self.generation}"

    def confirmation(self, label: str) -> str | None:
        """A tick box to save what the service refused until confirmed (`ConfirmationRequired`, through
        `save(..., confirmable=True)`): a rate above the label's ceiling, a chair another booking holds. It
        shows, with the reasons, only while the fields hold the values refused, so a changed value is asked
        about afresh (its box keyed by the question: a tick never carries over to another one).

        Ticked: the reasons confirmed, as one text, for the service to compare with the reasons it finds
        when it saves (a weight or a booking recorded meanwhile asks again); else None."""
        asked = st.session_state.get(self._asked)
        if not asked or asked[0] != self.values():
            return None
        reasons = " ".join(asked[1])
        box = self.key("confirmation")
        with st.container(key=box):
            st.warning("**Not saved yet.** " + reasons, icon="⚠️")
            digest = hashlib.sha256(f"{asked[0]}|{reasons}".encode()).hexdigest()[:12]
            ticked = st.checkbox(label, key=self.key(f"{CONFIRM_FIELD}_{digest}"))
        scroll_into_view(box)
        return reasons if ticked else None

    def pick(
        self,
        label: str,
        field: str,
        options: Iterable[V],
        describe: Callable[[V], str],
        placeholder: str,
        *,
        at: Any = st,
    ) -> V | None:
        """A picker that names whose record the save changes (a patient, a course, a therapy given): it starts
        empty, and `chosen` refuses the save until something is picked. `at`: a column to draw it in."""
        value: V | None = at.selectbox(
            label, list(options), key=self.key(field), format_func=describe, index=None, placeholder=placeholder
        )
        return value

    def chosen(self, value: V | None, message: str, *, also: Callable[[], object] | None = None) -> TypeGuard[V]:
        """True when a picker that starts empty (`index=None`) holds a choice. Else `message` shows where a
        refused save's reason shows, every field keeps what it holds, and the caller saves nothing.
        `also`: the service's own check of the form's other fields (no database); its problems join the
        same refusal, so a nurse missing the pick and a reason hears of both in one tap, not one per tap.

        Pickers that name whose record a save changes start empty: a first option taken by default, or
        left in place when the nurse meant to pick another, would end or book the wrong patient's course."""
        if value is not None:
            return True
        problems = {"choice": message}
        if also is not None:
            try:
                also()
            except ValidationError as error:
                problems.update(error.problems)
        self._refused(ValidationError(problems))
        return False

    def _refused(self, error: ChairsideError) -> None:
        outcome = self.key("outcome")
        with st.container(key=outcome):
            show_error(error)
        scroll_into_view(outcome)


def scroll_into_view(key: str) -> None:
    """Bring the keyed element into view by the least scroll: a refusal below the fold is never missed."""
    st.html(  # once the message has rendered, and only if it sits below the bottom edge
        "<script>setTimeout(function () {"
        f"var el = document.querySelector('.st-key-{key}');"
        "if (el && el.getBoundingClientRect().bottom > window.innerHeight) {"
        "el.scrollIntoView({block: 'end', behavior: 'instant'}); }"
        "}, 150);</script>",
        unsafe_allow_javascript=True,
    )


def done(name: str) -> None:
    """Move the named form to a blank instance (its token is spent)."""
    generation = int(st.session_state.get(_gen_key(name), 0))
    # the new instance first: a run stopped part-way through (every session-state access may stop it) has
    # moved on, and never leaves this instance without its token or its kept options
    st.session_state[_gen_key(name)] = generation + 1
    spent = tuple(f"_form_{what}_{name}__{generation}" for what in ("token", "saving", "renewed", "asked"))
    pinned = f"_form_choices_{name}__{generation}__"
    for key in [k for k in st.session_state if k in spent or str(k).startswith(pinned)]:
        del st.session_state[key]


def instance(name: str) -> EntryForm:
    return EntryForm(name, int(st.session_state.get(_gen_key(name), 0)))


@contextmanager
def entry_form(name: str, *, border: bool = True) -> Iterator[EntryForm]:
    """`with entry_form("premed_12") as f:` — an `st.form` whose fields survive a refused save."""
    form = instance(name)
    with st.form(f"{name}__{form.generation}", clear_on_submit=False, enter_to_submit=False, border=border):
        yield form
        show_flash(_msg_key(name))


def forget_pending(prefix: str = "_pending_") -> None:
    """Drop every confirmation waiting on screen (another session was opened)."""
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[key]
