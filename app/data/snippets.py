"""Ready-to-paste examples for a connector: curl, Power Query, Qlik Sense, Python, a proxy URL.

Plain data from the portal's URL and a connector id. The connection code is never in them: it is
shown once, so every example says ``<connection code>`` (or, in Power Query, a parameter ``Code``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

PLACEHOLDER = "<connection code>"
API = "/api/v1"


@dataclass(frozen=True)
class Typical:
    """A connector's most common table and proxy call."""

    table: str
    params: tuple[tuple[str, str], ...]  # the table's query, without format
    table_what: str  # plain words: what the table holds
    proxy: str  # path and query after /proxy/
    proxy_what: str
    proxy_answer: str = "json"  # what the resource answers: json, or xml for Storage


TYPICAL = {
    "sharepoint": Typical(
        "sites", (), "the SharePoint sites you can open",
        "v1.0/sites/root/lists", "the lists of your SharePoint home site",
    ),
    "onedrive": Typical(
        "files", (("recursive", "true"),), "every file in your OneDrive",
        "v1.0/me/drive/root/children", "the files at the top of your OneDrive",
    ),
    "outlook": Typical(
        "messages", (("folder", "inbox"),), "the messages in your inbox",
        "v1.0/me/messages?$top=10&$select=subject,from,receivedDateTime",
        "your ten newest messages",
    ),
    "dynamics": Typical(
        "entity", (("set", "accounts"), ("select", "name")), "the names of your accounts",
        "api/data/v9.2/WhoAmI", "who you are in Dynamics 365",
    ),
    "azure-storage": Typical(
        "containers", (), "the containers of the storage account",
        "?comp=list", "the containers of the storage account", "xml",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Snippet:
    """One example: a heading, a sentence saying where it goes, the text, and tool settings."""

    id: str
    title: str
    intro: str
    text: str
    settings: tuple[tuple[str, str], ...] = ()  # for tools set up in a dialog (Qlik Sense)


@dataclass(frozen=True)
class Examples:
    """Everything the code page shows for one connector."""

    typical: Typical
    api: str  # the API's base URL, e.g. https://portal.example.com/api/v1
    token_url: str
    proxy_url: str
    table_url: str  # CSV, the default format
    snippets: tuple[Snippet, ...]


def typical(connector_id: str) -> Typical:
    """Return the typical calls of a connector (every Dynamics 365 organization alike)."""
    kind = "dynamics" if connector_id.startswith("dynamics") else connector_id
    return TYPICAL[kind]


def examples(portal_url: str, connector_id: str) -> Examples:
    """Return the examples for a connector, filled with this portal's URL."""
    calls = typical(connector_id)
    api = portal_url.rstrip("/") + API
    proxy_url = f"{api}/proxy/{calls.proxy}"
    snippets = (
        _curl(api, calls, proxy_url),
        _power_query(api, calls),
        _qlik(api, calls),
        _python(api, calls, proxy_url),
        _proxy(calls, proxy_url),
    )
    return Examples(calls, api, f"{api}/token", proxy_url, table_url(api, calls), snippets)


def table_url(api: str, calls: Typical, form: str = "csv") -> str:
    """Return the typical table's URL in a format (csv is the default and is left out)."""
    params = calls.params + ((("format", form),) if form != "csv" else ())
    query = urlencode(params)
    return f"{api}/tables/{calls.table}" + (f"?{query}" if query else "")


def _curl(api: str, calls: Typical, proxy_url: str) -> Snippet:
    """Return the three calls a shell script makes: a token, the proxy, a table."""
    header = f"-H 'Authorization: Bearer {PLACEHOLDER}'"
    text = "\n".join(
        [
            "# A current access token, as JSON",
            f"curl -X POST '{api}/token' {header}",
            "",
            f"# {_sentence(calls.proxy_what)}, through the proxy",
            f"curl '{proxy_url}' {header}",
            "",
            f"# {_sentence(calls.table_what)}, as a CSV file",
            f"curl '{table_url(api, calls)}' {header} -o {calls.table}.csv",
        ]
    )
    intro = f"Replace {PLACEHOLDER} with your code. On Windows, run them in PowerShell as curl.exe."
    return Snippet("curl", "curl", intro, text)


def _power_query(api: str, calls: Typical) -> Snippet:
    """Return an M query that loads the typical table as CSV (Power BI, Excel)."""
    options = [f'RelativePath = "tables/{calls.table}"']
    if calls.params:
        query = ", ".join(f'{name} = "{value}"' for name, value in calls.params)
        options.append(f"Query = [{query}]")
    options.append('Headers = [Authorization = "Bearer " & Code]')
    text = "\n".join(
        [
            "let",
            # A fixed base URL with RelativePath and Query lets the Power BI service refresh it.
            f'    Source = Web.Contents("{api}/", [',
            ",\n".join(f"        {option}" for option in options),
            "    ]),",
            "    Rows = Csv.Document(Source,",
            "        [Encoding = 65001, QuoteStyle = QuoteStyle.Csv]),",
            "    Table = Table.PromoteHeaders(Rows, [PromoteAllScalars = true])",
            "in",
            "    Table",
        ]
    )
    intro = (
        "In Power BI or Excel: add a text parameter named Code that holds your code "
        "(Manage parameters, New parameter), then paste this into a blank query's "
        "Advanced editor. If asked how to connect, choose Anonymous: the code is the key."
    )
    return Snippet("power-query", "Power BI and Excel (Power Query)", intro, text)


def _qlik(api: str, calls: Typical) -> Snippet:
    """Return the settings of a Qlik Sense REST connection to the typical table, as JSON."""
    settings = (
        ("Method", "GET"),
        ("Authentication schema", "Anonymous"),
        ("Query header name", "Authorization"),
        ("Query header value", f"Bearer {PLACEHOLDER}"),
        ("Pagination type", "None"),
    )
    intro = (
        "Create a REST connection with this URL and the settings below. "
        "Pagination stays None: the portal fetches every page itself."
    )
    url = table_url(api, calls, "json")
    return Snippet("qlik", "Qlik Sense (REST connector)", intro, url, settings)


def _python(api: str, calls: Typical, proxy_url: str) -> Snippet:
    """Return a script that calls the proxy with requests and loads the table with pandas."""
    shown = "answer.text" if calls.proxy_answer == "xml" else "answer.json()"
    text = "\n".join(
        [
            "import pandas as pd",
            "import requests",
            "",
            "# Your connection code: keep it out of files you share",
            f'code = "{PLACEHOLDER}"',
            'headers = {"Authorization": "Bearer " + code}',
            "",
            f"# {_sentence(calls.proxy_what)}, through the proxy",
            f'proxy_url = "{proxy_url}"',
            "answer = requests.get(proxy_url, headers=headers, timeout=60)",
            "answer.raise_for_status()",
            f"print({shown})",
            "",
            f"# {_sentence(calls.table_what)}, as a data frame",
            f'table_url = "{table_url(api, calls)}"',
            "frame = pd.read_csv(table_url, storage_options=headers)",
            "print(frame.head())",
        ]
    )
    intro = f"Replace {PLACEHOLDER} with your code. Needs the requests and pandas packages."
    return Snippet("python", "Python (requests and pandas)", intro, text)


def _proxy(calls: Typical, proxy_url: str) -> Snippet:
    """Return the proxy URL of the typical call, for any tool that takes a URL and a header."""
    intro = (
        f"Any tool that can send a header: this URL reads {calls.proxy_what}. "
        f"Send the header Authorization: Bearer {PLACEHOLDER}."
    )
    return Snippet("proxy-url", "Any other tool: a proxy URL", intro, proxy_url)


def _sentence(words: str) -> str:
    """Return words with a capital first letter, for a comment."""
    return words[:1].upper() + words[1:]
