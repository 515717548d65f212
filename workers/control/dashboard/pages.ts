/** The dashboard's HTML: one layout, one shell per page, the login form. Every value is escaped by Hono's `html`. */
import { html } from "hono/html";

/** The pages there are. */
export type PageName = "overview" | "topology" | "service" | "status" | "tap";

const TITLES: Record<PageName, string> = { overview: "Overview", topology: "Topology", service: "Service", status: "Status", tap: "Tap" };

function layout(title: string, body: unknown, nav: unknown = "") {
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title} · Weft</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/dashboard/assets/uplot.css" />
    <link rel="stylesheet" href="/dashboard/assets/app.css" />
  </head>
  <body>
    <header>
      <a class="brand" href="/dashboard">Weft</a>
      ${nav}
    </header>
    ${body}
  </body>
</html>`;
}

/** A page's shell: the script reads what to show from `#app`'s data attributes. */
export async function page(name: PageName, options: { kind: string; csrf: string; service?: string }): Promise<string> {
  const nav = html`<nav>
      <a href="/dashboard" class="${name === "overview" ? "here" : ""}">Overview</a>
      <a href="/dashboard/topology" class="${name === "topology" ? "here" : ""}">Topology</a>
      <a href="/dashboard/tap" class="${name === "tap" ? "here" : ""}">Tap</a>
      <a href="/dashboard/status" class="${name === "status" ? "here" : ""}">Status &amp; audit</a>
      <span class="who">${options.kind}</span>
      <form method="post" action="/dashboard/logout"><button type="submit">Log out</button></form>
    </nav>`;
  const title = name === "service" ? `${options.service}` : TITLES[name];
  const body = html`<main id="app" data-page="${name}" data-service="${options.service ?? ""}" data-csrf="${options.csrf}" data-kind="${options.kind}">
      <h1>${title}</h1>
      <p class="loading">Loading…</p>
    </main>
    <script src="/dashboard/assets/uplot.js"></script>
    <script src="/dashboard/assets/app.js"></script>`;
  return (await layout(title, body, nav)).toString();
}

/** The login form, with an error line after a failed try. */
export async function loginPage(options: { error?: string }): Promise<string> {
  const body = html`<main class="login">
      <h1>Log in</h1>
      <p>Paste an admin or read-only token of this control plane (the local mesh keeps its admin token in <code>.weft/admin-token</code>).</p>
      ${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ""}
      <form method="post" action="/dashboard/login">
        <label for="token">Token</label>
        <input id="token" name="token" type="password" autocomplete="off" required />
        <button type="submit">Log in</button>
      </form>
    </main>`;
  return (await layout("Log in", body)).toString();
}
