"""Exports for quality teams: documented, spreadsheet-safe CSVs (de-identified on request) and FHIR bundles.

The filter and FHIR forms go through `ui.forms`; the dictionary CSV through `ui.csv_download`.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from infusion.accounts.permissions import AUDIT
from infusion.clock import local_date, utcnow
from infusion.errors import ChairsideError
from infusion.exports import datasets as export
from infusion.exports import schema as export_schema
from infusion.exports import service as export_service
from infusion.exports.deidentify import DEID_NOTICE, ENV_SECRET
from infusion.exports.deidentify import key_file as deidentify_key_file
from infusion.reads.trends import service as trends
from ui import common as ui
from ui import forms

db = ui.get_db()
quality = ui.page_guard("export")
st.header("Exports")
st.caption(
    f"UTF-8 CSV with a byte-order mark (opens cleanly in Excel), ISO 8601 times with the UTC offset, SI units "
    f"named in the column headers, formula injection neutralised. Schema version {export_schema.SCHEMA_VERSION}; "
    "every column is described in the data dictionary below. Every export is recorded in the audit log."
)

datasets = [d for d in export_schema.DATASETS if d != "audit" or quality.role in AUDIT]
therapies, chairs, nurses = trends.filter_options(db, quality) if quality.role in ("quality", "admin") else ({}, {}, {})
sites = {site.id: site for site in ui.attempt(lambda: export_service.export_sites(db, quality)) or []}
today = local_date(utcnow(), ui.working_site(db, quality).timezone)  # the site's calendar day, as Trends
# the mode sits outside the filter form: switching it refreshes the preview at once
mode = forms.instance("export_filters")
m = st.columns([1, 3])
deidentify = m[0].toggle("De-identify (Safe Harbor)", key=mode.key("deid"))
pseudonymise_site = deidentify and m[1].checkbox("Replace site with a pseudonymous code", key=mode.key("pseudo"))
if deidentify:
    m[1].caption(
        "A site is not a Safe Harbor identifier, so the file keeps its code; replaced, it becomes site_key, a keyed "
        "code the same in every export, to compare sites without naming them."
    )
with forms.entry_form("export_filters") as form:
    k = form.key
    c = st.columns([1, 1, 1, 2])
    dataset = c[0].selectbox("Dataset", datasets, key=k("dataset")) or datasets[0]
    start = c[1].date_input("From", value=today - timedelta(days=30), key=k("from"))
    end = c[2].date_input("To", value=today, key=k("to"))
    site_ids = c[3].multiselect(
        "Sites (each site's local days)",
        list(sites),
        default=list(sites),
        format_func=lambda i: sites[i].label,
        key=k("site"),
    )
    d = st.columns(3)
    therapy_ids = d[0].multiselect("Therapy", list(therapies), format_func=lambda i: therapies[i], key=k("therapy"))
    chair_ids = d[1].multiselect("Chair", list(chairs), format_func=lambda i: chairs[i], key=k("chair"))
    nurse_ids = d[2].multiselect("Nurse", list(nurses), format_func=lambda i: nurses[i], key=k("nurse"))
    in_error = st.checkbox("Include entered-in-error rows (flagged in their own column)", key=k("in_error"))
    form.submit("Preview", type="primary")
if sites and not site_ids:
    st.info("Choose at least one site.")
    st.stop()
# every site offered = no site named (audit events about no session stay in)
named = tuple(site_ids) if set(site_ids) != set(sites) else None

if deidentify:
    with st.expander("What de-identification removes", expanded=True):
        st.markdown("\n".join(f"- {line}" for line in DEID_NOTICE))

try:
    filters = export.ExportFilters(
        start=start,
        end=end,
        therapy_ids=tuple(therapy_ids),
        chair_ids=tuple(chair_ids),
        nurse_ids=tuple(nurse_ids),
        include_entered_in_error=in_error,
        site_ids=named,
        pseudonymise_site=pseudonymise_site,
    )
    frame, total = export_service.preview(db, quality, dataset, filters, deidentify=deidentify)
except ChairsideError as error:
    ui.show_error(error, prefix="")
    st.stop()
if deidentify:
    st.caption(
        f"Pseudonyms use the de-identification key: the {ENV_SECRET} variable when set, otherwise the key "
        f"file {deidentify_key_file()} (made on first use; back it up to keep pseudonyms stable)."
    )

if total == 0:
    st.info("No rows match these filters: try a wider date range, fewer filters or another dataset.")
else:
    st.markdown(f"**{total:,} rows** match. First {len(frame)}:")
    st.dataframe(frame, hide_index=True, width="stretch")
codes = [sites[i].code for i in named or ()]
name = export.suggested_filename(dataset, filters, deidentify, codes)
if total > export_service.PAGE_ROW_LIMIT:
    flags = "".join(f" --site {code}" for code in codes) + (" --deidentify" if deidentify else "")
    flags += " --pseudonymise-site" if pseudonymise_site else ""
    st.warning(
        f"That is more than {export_service.PAGE_ROW_LIMIT:,} rows: use the command line, which streams "
        f"to a file with bounded memory:\n\n`python -m infusion.exports --dataset {dataset} --from {start} "
        f"--to {end}{flags} --out {name}`"
    )
elif total:
    # the prepared file belongs to the whole request, not its file name: a name leaves out the therapy,
    # chair, nurse and entered-in-error filters, so a file kept by name held the earlier filters' rows
    request = (dataset, filters, deidentify)
    if st.button("Prepare the CSV file", key="ex_prepare"):
        data = ui.attempt(lambda: export_service.csv_file(db, quality, dataset, filters, deidentify=deidentify))
        if data is not None:
            st.session_state["_export_file"] = (request, name, data[0], data[1])
    prepared = st.session_state.get("_export_file")
    if prepared and prepared[0] == request:
        _, file_name, content, rows = prepared
        st.download_button(
            f"Download {file_name} ({rows:,} rows)",
            content,
            file_name=file_name,
            mime="text/csv",
            type="primary",
        )
    elif prepared:
        st.caption("The filters changed since the file was prepared: prepare it again for these rows.")

dictionary = export_schema.dictionary_rows(dataset, deidentify, pseudonymise_site)
with st.expander(f"Data dictionary: {dataset}{' (de-identified)' if deidentify else ''}"):
    st.dataframe(dictionary, hide_index=True, width="stretch")
    ui.csv_download(
        "Download the data dictionary (CSV)",
        pd.DataFrame(dictionary, columns=export_schema.DICTIONARY_FIELDS),
        file_name=f"chairside_{dataset}_dictionary_v{export_schema.SCHEMA_VERSION}.csv",
        key="ex_dict",
    )

st.subheader("FHIR R4 bundle of one session")
with forms.entry_form("fhir") as form:
    c = st.columns([1, 1, 1])
    session_id = c[0].number_input("Session id", value=None, step=1, key=form.key("session"))
    fhir_deid = c[1].toggle("De-identify", key=form.key("deid"))
    build = form.submit("Build bundle")
if build:
    if session_id is None:
        st.error("Enter a session id (shown on the Session record page and in the sessions export).")
    else:
        sid = int(session_id)
        bundle = ui.attempt(lambda: export_service.fhir_bundle(db, quality, sid, deidentify=fhir_deid))
        if bundle is not None:
            st.download_button(
                "Download FHIR bundle (JSON)",
                bundle,
                file_name=f"session_{sid}_fhir.json",
                mime="application/fhir+json",
                key="fhir_download",
            )
