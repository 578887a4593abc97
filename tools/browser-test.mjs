// npm run test:browser — the playground (GET /playground) in real Chromium, driven by playwright-core,
// against the offline stack (`wrangler dev` with the Gemini and Stripe stubs, on free ports, with a
// throwaway database). Chromium comes from the system (`apt-get install chromium`, or CHROMIUM_PATH);
// without one the run is skipped, except in CI where it fails. Screenshots go to test-results/.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { startLocalStack } from "./local-stack.mjs";

const RESULTS = "test-results";
const ASSETS = "public/playground";
const GZIP_BUDGET_BYTES = 30 * 1024;
const PASSWORD = "s3cretPass";
const NEW_PASSWORD = "an0therPass7";
const startedAt = Date.now();

const executablePath = [
  process.env.CHROMIUM_PATH,
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
].find((path) => path && existsSync(path));
if (!executablePath) {
  const reason = "no Chromium found: install it (`apt-get install chromium` on Debian) or set CHROMIUM_PATH";
  if (process.env.CI) {
    console.error(`browser: ${reason}`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
  console.log(`browser: skipped, ${reason}`);
  console.log("0 passed, 0 failed, 1 skipped");
  process.exit(0);
}

const waitUntil = async (condition, timeoutMs, message) => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
};

let passed = 0;
let failed = 0;
const check = (condition, message) => {
  if (!condition) throw new Error(message);
};

/** What a step returns when what it tests is not served yet (`return notYet("…")`): it is skipped. */
const SKIPPED = Symbol("skipped");
const notYet = (reason) => ({ [SKIPPED]: reason });

/** Runs the steps in order; they build on each other, so the first failure stops the run. */
async function steps(list, onFailure) {
  for (const [name, run] of list) {
    const started = Date.now();
    try {
      const outcome = await run();
      if (outcome?.[SKIPPED]) {
        console.log(`browser: - ${name} (skipped: ${outcome[SKIPPED]})`);
        continue;
      }
      passed += 1;
      console.log(`browser: ✓ ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      failed += 1;
      console.error(`browser: ✗ ${name}\n  ${err instanceof Error ? err.message : err}`);
      await onFailure();
      return;
    }
  }
}

/**
 * A TCP relay in front of `wrangler dev`: the browser talks to the Worker through it, so the test can
 * cut every open connection, as a network change would.
 */
function startRelay(target) {
  const { hostname, port } = new URL(target);
  const pairs = new Set();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    const pair = [client, upstream];
    pairs.add(pair);
    const cut = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.pipe(upstream).on("error", cut).on("close", cut);
    upstream.pipe(client).on("error", cut).on("close", cut);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        cutAll: () => {
          for (const [client, upstream] of pairs) {
            client.destroy();
            upstream.destroy();
          }
        },
        close: () => new Promise((done) => server.close(done)),
      }),
    );
  });
}

mkdirSync(RESULTS, { recursive: true });
for (const file of readdirSync(RESULTS).filter((name) => name.startsWith("playground-"))) rmSync(join(RESULTS, file));
const persistTo = mkdtempSync(join(tmpdir(), "gemini-backend-browser-"));
let stack;
let relay;
let browser;
try {
  stack = await startLocalStack({ persistTo, quiet: true, extraVars: { JWT_SECRET: randomBytes(32).toString("hex") } });
  relay = await startRelay(stack.baseUrl);
  const site = relay.url;
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  console.log(`browser: ${browser.version()} (${executablePath}) against ${stack.baseUrl}`);
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const problems = [];
  const foreign = [];
  const watch = (page, label) => {
    page.on("request", (request) => {
      if (!request.url().startsWith(site)) foreign.push(`${label}: ${request.url()}`);
    });
    page.on("pageerror", (err) => problems.push(`${label}: uncaught ${err.message}`));
    page.on("console", (message) => {
      // The browser logs every non-2xx answer; the page shows those itself. Anything else is a problem.
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        problems.push(`${label}: ${message.text()}`);
      }
    });
    return page;
  };
  const page = watch(await context.newPage(), "first tab");
  let second;
  // The body, not the viewport: as tall as the page's content.
  const shot = (target, name) => target.locator("body").screenshot({ path: join(RESULTS, `playground-${name}.png`) });
  const phone = `+9198${String(Date.now()).slice(-8)}`;
  const reply = page.locator(".turn").last().locator(".reply");
  const token = () => page.evaluate(() => sessionStorage.getItem("gemini-backend.authToken"));
  const roomInUrl = (tab) => new URLSearchParams(new URL(tab.url()).hash.slice(1)).get("chatroom");
  // The turn with the prompt or reply shown last, and its ‹ n/m › counters.
  const lastTurn = (tab) => tab.locator(".turn").last();
  const promptVersion = (turn) => turn.locator(".asked .versions .count");
  const replyVersion = (turn) => turn.locator(".reply .versions .count");
  const exactPrompt = (tab, text) =>
    tab.locator(".prompt").filter({ hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) });
  const focusedLabel = (tab) => tab.evaluate(() => document.activeElement?.getAttribute("aria-label"));
  /** Opens a chatroom in a tab that is signed in already: a link to it, loaded afresh. */
  const openInTab = async (tab, id) => {
    await tab.bringToFront();
    await tab.goto(`${site}/playground#chatroom=${id}`);
    await tab.reload();
    await tab.getByText("● Live").waitFor();
  };
  /** Creates a chatroom from the form and waits until it is open and live. */
  const createRoom = async (tab, name) => {
    await tab.bringToFront();
    await tab.getByLabel("New chatroom").fill(name);
    await tab.getByRole("button", { name: "Create" }).click();
    await tab.getByRole("heading", { name }).waitFor();
    await tab.getByText("● Live").waitFor();
    return roomInUrl(tab);
  };
  const sendAndWait = async (tab, text) => {
    await tab.getByLabel("Message").fill(text);
    await tab.getByLabel("Message").press("Control+Enter");
    await exactPrompt(tab, text).waitFor();
    await lastTurn(tab).locator(".reply").getByText(/^Done/).waitFor();
  };
  let chatroomId;
  let branchesId;
  /** GET /api/chatroom/:id requests of the second tab on the branches chatroom: a branch it read again. */
  const branchReads = [];

  await steps(
    [
      [
        "GET /playground is HTML with a strict CSP; its files are under 30 KiB gzip",
        async () => {
          const response = await fetch(`${stack.baseUrl}/playground`);
          check(response.headers.get("content-type")?.startsWith("text/html"), "not HTML");
          const csp = response.headers.get("content-security-policy") ?? "";
          check(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), `CSP: ${csp}`);
          const gzip = readdirSync(ASSETS).reduce(
            (sum, file) => sum + gzipSync(readFileSync(join(ASSETS, file)), { level: 9 }).length,
            0,
          );
          console.log(`browser: playground files ${(gzip / 1024).toFixed(1)} KiB gzip`);
          check(gzip < GZIP_BUDGET_BYTES, `${gzip} bytes gzip`);
        },
      ],
      [
        "/docs shows its sidebar's two links on one line",
        async () => {
          await page.goto(`${site}/docs`);
          const links = page.locator("nav p.links");
          const boxes = await links
            .locator("a")
            .evaluateAll((anchors) => anchors.map((a) => a.getBoundingClientRect().top));
          check(boxes.length === 2 && boxes[0] === boxes[1], `the links sit on different lines: ${boxes.join(", ")}`);
          check((await links.textContent()) === "Playground · openapi.json", await links.textContent());
        },
      ],
      [
        "signs up, sees the mocked OTP, verifies and is signed in (token in sessionStorage)",
        async () => {
          await page.goto(`${site}/playground`);
          const signup = page.getByRole("region", { name: "Sign up" });
          await signup.getByLabel("Phone number").fill(phone);
          await signup.getByLabel("Password").fill("short");
          await signup.getByRole("button", { name: "Sign up" }).click();
          await page.getByRole("alert").getByText("Request validation failed").waitFor();
          await signup.getByLabel("Password").fill(PASSWORD);
          await signup.getByRole("button", { name: "Sign up" }).click();
          const note = page.getByText(/Mocked SMS: your code is \d{6}/);
          await note.waitFor();
          const otp = /\d{6}/.exec(await note.textContent())[0];
          check((await page.getByLabel("Code").inputValue()) === otp, "the code is not filled in");
          await shot(page, "01-verify");
          await page.getByRole("button", { name: "Verify" }).click();
          await page.getByText("0 of 5 prompts used today").waitFor();
          check((await page.locator("#tier").textContent()) === "Basic", "not Basic");
          check(typeof (await token()) === "string", "no token in sessionStorage");
        },
      ],
      [
        "creates a chatroom and listens to it live",
        async () => {
          await page.getByLabel("New chatroom").fill("Trip planning");
          await page.getByRole("button", { name: "Create" }).click();
          await page.getByRole("heading", { name: "Trip planning" }).waitFor();
          await page.getByText("● Live").waitFor();
          await page
            .getByRole("navigation", { name: "Chatrooms" })
            .getByRole("button", { name: "Trip planning" })
            .waitFor();
          chatroomId = new URLSearchParams(new URL(page.url()).hash.slice(1)).get("chatroom");
          check(chatroomId, `no chatroom in the URL ${page.url()}`);
        },
      ],
      [
        "sends a prompt and sees the reply grow in at least 3 steps, in an aria-live region",
        async () => {
          // Every text the reply shows, recorded in the page as the DOM changes.
          await page.evaluate(() => {
            window.replyTexts = [];
            new MutationObserver(() => {
              const text = document.querySelector(".turn:last-child .reply .text")?.textContent ?? "";
              if (text && text !== window.replyTexts.at(-1)) window.replyTexts.push(text);
            }).observe(document.querySelector("#turns"), { subtree: true, childList: true, characterData: true });
          });
          await page.getByLabel("Message").fill("Plan 3 days in Lisbon [slow]");
          await page.getByRole("button", { name: "Send" }).click();
          await page.waitForFunction(() => window.replyTexts.length >= 3, null, { timeout: 10_000 });
          const texts = await page.evaluate(() => window.replyTexts);
          check(
            texts.every((text, i) => i === 0 || (text.startsWith(texts[i - 1]) && text.length > texts[i - 1].length)),
            `the reply did not grow: ${JSON.stringify(texts)}`,
          );
          check((await reply.getAttribute("aria-live")) === "polite", "no aria-live on the reply");
          check((await reply.getAttribute("aria-busy")) === "true", "the reply is not aria-busy while written");
          await shot(page, "02-streaming");
        },
      ],
      [
        "Stop keeps the partial text, as the API stored it",
        async () => {
          await reply.getByRole("button", { name: "Stop" }).press("Enter");
          await reply.getByText("Stopped", { exact: true }).waitFor();
          const focused = await page.evaluate(() => document.activeElement?.textContent);
          check(focused === "Retry", `after Stop the focus is on ${JSON.stringify(focused)}, not Retry`);
          const kept = await reply.locator(".text").textContent();
          await page.waitForTimeout(1_000);
          check((await reply.locator(".text").textContent()) === kept, "the text changed after Stop");
          const { messages } = await fetch(`${stack.baseUrl}/api/chatroom/${chatroomId}/messages`, {
            headers: { Authorization: `Bearer ${await token()}` },
          }).then((response) => response.json());
          const stored = messages.find((message) => message.role === "assistant");
          check(stored?.status === "cancelled" && stored.content === kept, `stored ${JSON.stringify(stored)}`);
          check(kept.length > 0 && !kept.endsWith("[slow]"), `kept ${JSON.stringify(kept)}`);
          await shot(page, "03-stopped");
        },
      ],
      [
        "Retry writes the reply again, to the end",
        async () => {
          await reply.getByRole("button", { name: "Retry" }).click();
          await reply.getByText("Writing…").waitFor();
          await reply.getByText(/^Done/).waitFor({ timeout: 15_000 });
          check((await reply.locator(".text").textContent()).endsWith("Plan 3 days in Lisbon [slow]"), "incomplete");
          check((await reply.getAttribute("aria-busy")) === "false", "still aria-busy");
          await page.getByText("2 of 5 prompts used today").waitFor();
          await shot(page, "04-retried");
        },
      ],
      [
        "a second tab on the same chatroom shows a prompt sent from the first, live",
        async () => {
          second = watch(await context.newPage(), "second tab");
          await second.goto(`${site}/playground#chatroom=${chatroomId}`);
          const login = second.getByRole("region", { name: "Log in" });
          await login.getByLabel("Phone number").fill(phone);
          await login.getByLabel("Password").fill(PASSWORD);
          await login.getByRole("button", { name: "Log in" }).press("Enter");
          await second.getByText("● Live").waitFor();
          await second.getByText("Plan 3 days in Lisbon [slow]").first().waitFor();
          // A background tab gets no animation frames, which Playwright waits for before each action.
          await page.bringToFront();
          // Sent with the keyboard: Ctrl+Enter in the message box.
          await page.getByLabel("Message").fill("Same conversation in two tabs?");
          await page.getByLabel("Message").press("Control+Enter");
          const mirrored = second.locator(".turn").last();
          await mirrored.locator(".prompt").getByText("Same conversation in two tabs?").waitFor();
          await mirrored.locator(".reply").getByText(/^Done/).waitFor();
          check(
            (await mirrored.locator(".reply .text").textContent()) ===
              (await page.locator(".turn").last().locator(".reply .text").textContent()),
            "the tabs show different replies",
          );
          await shot(second, "05-second-tab");
        },
      ],
      [
        "reaches the daily limit and shows the API's message",
        async () => {
          for (const text of ["Fourth prompt", "Fifth prompt", "Sixth prompt"]) {
            await page.getByLabel("Message").fill(text);
            await page.getByRole("button", { name: "Send" }).click();
            await page.waitForFunction(
              () => document.querySelector("#prompt").value === "" || document.querySelector("#error").textContent,
            );
          }
          await page.getByRole("alert").getByText("Basic accounts can send 5 prompts per day").waitFor();
          await page.getByText("5 of 5 prompts used today").waitFor();
          check((await page.getByLabel("Message").inputValue()) === "Sixth prompt", "the refused prompt was lost");
          await shot(page, "06-daily-limit");
        },
      ],
      [
        "upgrades through the stub's Stripe Checkout and turns Pro",
        async () => {
          await page.getByRole("button", { name: "Upgrade to Pro" }).click();
          const link = page.getByRole("link", { name: /Stripe Checkout/ });
          const [checkout] = await Promise.all([context.waitForEvent("page"), link.click()]);
          await checkout.waitForURL(/\/api\/billing\/dummy\/success/);
          await page.locator("#tier").getByText("Pro").waitFor({ timeout: 15_000 });
          await page.getByRole("button", { name: "Manage billing" }).waitFor();
          check(await page.getByRole("button", { name: "Upgrade to Pro" }).isHidden(), "Upgrade still offered");
          await checkout.close();
          await page.getByRole("button", { name: "Send" }).click();
          await page.getByText("6 prompts today, no limit").waitFor();
          await shot(page, "07-pro");
          await page.getByRole("button", { name: "Manage billing" }).click();
          const portal = await page.getByRole("link", { name: /billing portal/ }).getAttribute("href");
          check(portal?.endsWith("/portal"), `portal link ${portal}`);
        },
      ],
      [
        "resumes the live stream after a cut connection and a refused reconnect (an expired ticket)",
        async () => {
          const opened = [];
          page.on("request", (request) => {
            if (request.url().includes("/events?")) opened.push(new URL(request.url()).searchParams);
          });
          // The browser reconnects by itself (after about 3 s) with the old ticket; the Worker's answer
          // to an expired one is simulated, so the page has to get a new ticket and resume.
          await page.route("**/events?**", (route) =>
            route.fulfill({
              status: 401,
              contentType: "application/json",
              body: JSON.stringify({ success: false, message: "Missing, invalid or expired token" }),
            }),
          );
          relay.cutAll();
          await page.getByText("Reconnecting…").waitFor();
          const sent = await fetch(`${stack.baseUrl}/api/chatroom/${chatroomId}/message`, {
            method: "POST",
            headers: { Authorization: `Bearer ${await token()}`, "Content-Type": "application/json" },
            body: JSON.stringify({ userMessage: "Sent while the tab was away" }),
          });
          check(sent.status === 202, `send: ${sent.status}`);
          await waitUntil(() => opened.length >= 2, 10_000, "the page never tried to reconnect");
          await page.unroute("**/events?**");
          const resumed = page.locator(".turn").last();
          await resumed.locator(".prompt").getByText("Sent while the tab was away").waitFor({ timeout: 15_000 });
          await resumed.locator(".reply").getByText(/^Done/).waitFor();
          await page.getByText("● Live").waitFor();
          check(opened.at(-1).get("lastEventId"), "the new stream did not resume from the last event seen");
        },
      ],
      [
        "loads older messages with the cursor",
        async () => {
          // Six more prompts from another device (the API itself), so the history passes one page of 20.
          const auth = { Authorization: `Bearer ${await token()}`, "Content-Type": "application/json" };
          for (let i = 1; i <= 6; i++) {
            const response = await fetch(`${stack.baseUrl}/api/chatroom/${chatroomId}/message`, {
              method: "POST",
              headers: auth,
              body: JSON.stringify({ userMessage: `From the API, ${i}` }),
            });
            check(response.status === 202, `send ${i}: ${response.status}`);
          }
          await second.locator(".turn").last().locator(".prompt").getByText("From the API, 6").waitFor();
          await second.locator(".turn").last().locator(".reply").getByText(/^Done/).waitFor();
          await second.bringToFront();
          await second.reload();
          await second.getByText("● Live").waitFor();
          const first = second.locator(".prompt").getByText("Plan 3 days in Lisbon [slow]");
          check(await first.isHidden(), "the first prompt is on the newest page");
          await second.getByRole("button", { name: "Load older messages" }).click();
          await first.waitFor();
          check(await second.getByRole("button", { name: "Load older messages" }).isHidden(), "more pages left");
        },
      ],
      [
        "edits a prompt: the new version streams in as 2/2, and the second tab follows the branch live",
        async () => {
          branchesId = await createRoom(page, "Branches");
          await sendAndWait(page, "Name a colour");
          await openInTab(second, branchesId);
          await exactPrompt(second, "Name a colour").waitFor();
          second.on("request", (request) => {
            const { pathname } = new URL(request.url());
            if (request.method() === "GET" && pathname === `/api/chatroom/${branchesId}`) branchReads.push(pathname);
          });
          await page.bringToFront();
          const turn = lastTurn(page);
          check(await promptVersion(turn).isHidden(), "arrows on a prompt with one version");
          await turn.getByRole("button", { name: "Edit prompt" }).click();
          const box = turn.getByLabel("Edited prompt");
          check((await box.inputValue()) === "Name a colour", "the editor does not start from the prompt");
          await box.fill("Name a warm colour");
          await turn.getByRole("button", { name: "Save", exact: true }).click();
          await exactPrompt(page, "Name a warm colour").waitFor();
          const edited = lastTurn(page);
          await edited.locator(".reply").getByText(/^Done/).waitFor();
          check((await edited.locator(".reply .text").textContent()).endsWith("Name a warm colour"), "not its reply");
          check((await promptVersion(edited).textContent()) === "2/2", "the edit is not shown as version 2/2");
          check(await exactPrompt(page, "Name a colour").isHidden(), "the first version is still shown");
          await shot(page, "branch-edited");
          // The second tab learns of the move only through the chatroom's `branch` event, and reads the branch again.
          await exactPrompt(second, "Name a warm colour").waitFor();
          await lastTurn(second).locator(".reply").getByText(/^Done/).waitFor();
          check(await exactPrompt(second, "Name a colour").isHidden(), "the second tab still shows the first version");
          check(branchReads.length > 0, "the second tab did not read the branch again");
          check((await promptVersion(lastTurn(second)).textContent()) === "2/2", "the second tab shows no 2/2");
        },
      ],
      [
        "regenerates the reply: version 2/2 in both tabs",
        async () => {
          const turn = lastTurn(page);
          await turn.getByRole("button", { name: "Regenerate reply" }).click();
          await replyVersion(turn).filter({ hasText: "2/2" }).waitFor();
          await turn.locator(".reply").getByText(/^Done/).waitFor();
          check(
            (await turn.locator(".reply .text").textContent()).endsWith("Name a warm colour"),
            "the new reply is not to the edited prompt",
          );
          await replyVersion(lastTurn(second)).filter({ hasText: "2/2" }).waitFor();
          await lastTurn(second).locator(".reply").getByText(/^Done/).waitFor();
          await shot(page, "branch-regenerated");
        },
      ],
      [
        "rates the new reply, goes back to the first versions with the arrows and forth again; the second tab follows",
        async () => {
          const turn = lastTurn(page);
          const good = turn.getByRole("button", { name: "Good reply" });
          await good.click();
          await turn.locator('.thumb[data-rating="up"][aria-pressed="true"]').waitFor();
          await turn.getByRole("button", { name: "Previous reply version" }).press("Enter");
          await replyVersion(turn).filter({ hasText: "1/2" }).waitFor();
          check((await good.getAttribute("aria-pressed")) === "false", "the first reply shows the second's rating");
          const focusAfterReply = await focusedLabel(page);
          check(focusAfterReply === "Next reply version", `focus on ${focusAfterReply} after the first reply`);
          await replyVersion(lastTurn(second)).filter({ hasText: "1/2" }).waitFor();
          await turn.getByRole("button", { name: "Previous prompt version" }).press("Enter");
          await exactPrompt(page, "Name a colour").waitFor();
          check((await promptVersion(lastTurn(page)).textContent()) === "1/2", "the first prompt is not shown as 1/2");
          check(
            (await lastTurn(page).locator(".reply .text").textContent()).endsWith("Name a colour"),
            "the first prompt shows another reply",
          );
          const focusAfterPrompt = await focusedLabel(page);
          check(focusAfterPrompt === "Next prompt version", `focus on ${focusAfterPrompt} after the first prompt`);
          await exactPrompt(second, "Name a colour").waitFor();
          check(await exactPrompt(second, "Name a warm colour").isHidden(), "the second tab shows both versions");
          await shot(page, "branch-switched");
          await shot(second, "branch-switched-second-tab");
          // Forth: the newest leaf beneath the edited prompt is the regenerated reply, still rated Good.
          await lastTurn(page).getByRole("button", { name: "Next prompt version" }).click();
          await exactPrompt(page, "Name a warm colour").waitFor();
          await replyVersion(lastTurn(page)).filter({ hasText: "2/2" }).waitFor();
          check((await good.getAttribute("aria-pressed")) === "true", "the rating did not stay with its reply");
          const mirrored = lastTurn(second);
          await exactPrompt(second, "Name a warm colour").waitFor();
          await replyVersion(mirrored).filter({ hasText: "2/2" }).waitFor();
          await mirrored.locator('.thumb[data-rating="up"][aria-pressed="true"]').waitFor();
        },
      ],
      [
        "a page that opens the chatroom after the versions were made steps back to the first version and forth again",
        async () => {
          await second.bringToFront();
          await second.reload();
          await second.getByText("● Live").waitFor();
          await exactPrompt(second, "Name a warm colour").waitFor();
          check((await promptVersion(lastTurn(second)).textContent()) === "2/2", "the versions are not counted");
          // The API names the versions either side of each message, so a fresh page can reach them all.
          await lastTurn(second).getByRole("button", { name: "Previous prompt version" }).click();
          await exactPrompt(second, "Name a colour").waitFor();
          check((await promptVersion(lastTurn(second)).textContent()) === "1/2", "the first version is not shown");
          await exactPrompt(page, "Name a colour").waitFor();
          await lastTurn(second).getByRole("button", { name: "Next prompt version" }).click();
          await exactPrompt(second, "Name a warm colour").waitFor();
          await exactPrompt(page, "Name a warm colour").waitFor();
          await shot(second, "branch-reloaded-tab");
          await page.bringToFront();
        },
      ],
      [
        "saves a chatroom's system instruction and model, which stay after a reload and answer the next prompt",
        async () => {
          const listed = await fetch(`${stack.baseUrl}/api/models`, {
            headers: { Authorization: `Bearer ${await token()}` },
          });
          if (listed.status === 404) return notYet("GET /api/models is not served yet");
          const proOnly = (await listed.json()).models.find((model) => !model.tiers.includes("basic"));
          check(proOnly, "no Pro-only model listed");
          await page.bringToFront();
          const settings = page.locator("#settings");
          await settings.locator("summary").click();
          await settings.getByLabel("System instruction").fill("Answer in one short line.");
          // The user is Pro by now: no model is locked.
          check((await settings.locator("option:disabled").count()) === 0, "a model is locked for a Pro user");
          await settings.getByLabel("Model").selectOption(proOnly.id);
          await settings.getByRole("button", { name: "Save settings" }).click();
          await page.getByText("Settings saved").waitFor();
          await page.reload();
          await page.getByText("● Live").waitFor();
          await settings.locator("summary").click();
          const instruction = await settings.getByLabel("System instruction").inputValue();
          check(instruction === "Answer in one short line.", `system instruction ${JSON.stringify(instruction)}`);
          const model = await settings.getByLabel("Model").inputValue();
          check(model === proOnly.id, `model ${model}`);
          await shot(page, "settings");
          await settings.locator("summary").click();
          await sendAndWait(page, "Which model answers?");
          await lastTurn(page).locator(".reply .state").getByText(proOnly.id).waitFor();
        },
      ],
      [
        "a chatroom created without a name is a New chat until its title arrives live",
        async () => {
          await page.bringToFront();
          await page.getByLabel("New chatroom").fill("");
          await page.getByRole("button", { name: "Create" }).click();
          const untitled = page.getByRole("heading", { name: "New chat" });
          const refused = page.getByRole("alert").getByText("Request validation failed");
          await untitled.or(refused).waitFor();
          if (await refused.isVisible()) return notYet("POST /api/chatroom still needs a name");
          await page.getByText("● Live").waitFor();
          const rooms = page.getByRole("navigation", { name: "Chatrooms" });
          await rooms.getByRole("button", { name: "New chat" }).waitFor();
          await sendAndWait(page, "Plan a picnic by the river");
          await page.waitForFunction(() => document.querySelector("#room-name").textContent !== "New chat");
          const title = await page.locator("#room-name").textContent();
          await rooms.getByRole("button", { name: title, exact: true }).waitFor();
          await shot(page, "titled");
        },
      ],
      [
        "renames and deletes a chatroom",
        async () => {
          await page.bringToFront();
          await page.getByLabel("New chatroom").fill("Scratch");
          await page.getByRole("button", { name: "Create" }).click();
          await page.getByRole("heading", { name: "Scratch" }).waitFor();
          await page.getByText("Rename or delete").click();
          await page.getByLabel("Name", { exact: true }).fill("Scratch, renamed");
          await page.getByRole("button", { name: "Rename" }).click();
          const rooms = page.getByRole("navigation", { name: "Chatrooms" });
          await rooms.getByRole("button", { name: "Scratch, renamed" }).waitFor();
          await page.getByText("Rename or delete").click();
          page.once("dialog", (dialog) => dialog.accept());
          await page.getByRole("button", { name: "Delete chatroom" }).click();
          await page.getByText("Chatroom deleted.").waitFor();
          check(await rooms.getByRole("button", { name: "Scratch, renamed" }).isHidden(), "still listed");
        },
      ],
      [
        "rates a reply with a thumb, which stays after a reload, and takes it back",
        async () => {
          await page.bringToFront();
          await page
            .getByRole("navigation", { name: "Chatrooms" })
            .getByRole("button", { name: "Trip planning" })
            .click();
          await page.getByText("● Live").waitFor();
          const upPressedOnLastReply = (pressed) =>
            page.waitForFunction(
              (expected) =>
                [...document.querySelectorAll('.turn[data-status="completed"]')]
                  .at(-1)
                  ?.querySelector('.thumb[data-rating="up"]')
                  ?.getAttribute("aria-pressed") === expected,
              pressed,
            );
          const good = page
            .locator('.turn[data-status="completed"]')
            .last()
            .getByRole("button", { name: "Good reply" });
          await good.click();
          await upPressedOnLastReply("true");
          await shot(page, "feedback");
          await page.reload();
          await page.getByText("● Live").waitFor();
          const kept = page
            .locator('.turn[data-status="completed"]')
            .last()
            .getByRole("button", { name: "Good reply" });
          await kept.waitFor();
          check((await kept.getAttribute("aria-pressed")) === "true", "the rating was not kept");
          await kept.click();
          await upPressedOnLastReply("false");
        },
      ],
      [
        "a password change on another device ends the session in both tabs, which return to sign-in",
        async () => {
          for (const tab of [page, second]) {
            await tab
              .getByRole("navigation", { name: "Chatrooms" })
              .getByRole("button", { name: "Trip planning" })
              .click();
            await tab.getByText("● Live").waitFor();
          }
          const changed = await fetch(`${stack.baseUrl}/api/auth/change-password`, {
            method: "POST",
            headers: { Authorization: `Bearer ${await token()}`, "Content-Type": "application/json" },
            body: JSON.stringify({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }),
          });
          check(changed.status === 200, `change-password: ${changed.status}`);
          for (const tab of [page, second]) {
            await tab
              .getByText("Your session ended: the password was changed. Sign in again.")
              .waitFor({ timeout: 15_000 });
            await tab.locator("#signed-out").waitFor();
            check(await tab.locator("#signed-in").isHidden(), "still signed in");
          }
          await shot(page, "session-ended");
        },
      ],
      [
        "signs in again and searches: both versions of an edited prompt are found, the words marked",
        async () => {
          await page.bringToFront();
          const login = page.getByRole("region", { name: "Log in" });
          await login.getByLabel("Phone number").fill(phone);
          await login.getByLabel("Password").fill(NEW_PASSWORD);
          await login.getByRole("button", { name: "Log in" }).click();
          await page.locator("#signed-in").waitFor();
          await page.getByLabel("Search your chats").fill("colour");
          await page.getByRole("button", { name: "Search", exact: true }).click();
          await page
            .locator("#search-summary")
            .getByText(/found for “colour”/)
            .waitFor();
          const snippets = await page.locator("#search-results .snippet").allTextContents();
          check(snippets.includes("Name a colour"), `the first version is not found: ${snippets.join(" | ")}`);
          check(snippets.includes("Name a warm colour"), "the edited version is not found");
          const marks = await page.locator("#search-results mark").allTextContents();
          check(marks.length >= 2 && marks.every((mark) => mark === "colour"), `marked: ${marks.join(", ")}`);
          await shot(page, "search");
        },
      ],
      [
        "opens a result: its chatroom, on the branch that holds it, with the message marked",
        async () => {
          const result = page
            .locator("#search-results .result")
            .filter({ has: page.locator(".snippet", { hasText: /^Name a colour$/ }) });
          await result.click();
          await page.locator(".asked.found").getByText("Name a colour", { exact: true }).waitFor();
          check(roomInUrl(page) === branchesId, "another chatroom opened");
          const turn = page.locator(".turn").filter({ has: page.locator(".asked.found") });
          check((await promptVersion(turn).textContent()) === "1/2", "not shown as the first version");
          check(await exactPrompt(page, "Name a warm colour").isHidden(), "the other branch is shown");
          await shot(page, "search-opened");
        },
      ],
      [
        "shares the chatroom: the link opens without a token in a new browser, and stops once revoked",
        async () => {
          await page.getByText("Share", { exact: true }).click();
          await page.getByRole("button", { name: "Create a read-only link" }).click();
          await page.getByText(/^Link (copied|created): /).waitFor();
          const href = await page.locator("#shares a").first().getAttribute("href");
          const shared = `${site}${new URL(href, site).pathname}`;
          const stranger = await browser.newContext();
          try {
            const view = watch(await stranger.newPage(), "shared page");
            const opened = await view.goto(shared);
            check(opened?.status() === 200, `the shared page answered ${opened?.status()}`);
            await view.getByText("Name a colour").first().waitFor();
            check((await view.locator("script").count()) === 0, "the shared page carries a script");
            await shot(view, "shared-page");
          } finally {
            await stranger.close();
          }
          await page.locator("#shares").getByRole("button", { name: "Revoke" }).click();
          await page.getByText("Link revoked: it no longer opens.").waitFor();
          const later = await browser.newContext();
          try {
            const gone = await (await later.newPage()).goto(shared);
            check(gone?.status() === 404, `a revoked link answered ${gone?.status()}`);
          } finally {
            await later.close();
          }
        },
      ],
      [
        "shows the usage of the last 30 days as a chart and exports the account as a JSON file",
        async () => {
          await page.getByText("Your data", { exact: true }).click();
          await page
            .locator("#usage-summary")
            .getByText(/^\d+ prompts and \d+ tokens/)
            .waitFor();
          check((await page.locator("#usage-chart rect").count()) === 30, "not one bar per day");
          check((await page.locator("#usage-chart rect:not(.empty)").count()) >= 1, "no bar for today");
          await shot(page, "your-data");
          const [file] = await Promise.all([
            page.waitForEvent("download"),
            page.getByRole("button", { name: "Export my data" }).click(),
          ]);
          check(
            /^gemini-backend-export-\d{4}-\d{2}-\d{2}\.json$/.test(file.suggestedFilename()),
            file.suggestedFilename(),
          );
          const exported = JSON.parse(readFileSync(await file.path(), "utf8"));
          const branches = exported.chatrooms.find((room) => room.name === "Branches");
          const texts = branches?.messages.map((message) => message.content) ?? [];
          check(texts.includes("Name a colour") && texts.includes("Name a warm colour"), "a branch is missing");
          check(!JSON.stringify(exported).includes("passwordHash"), "a secret in the export");
        },
      ],
      [
        "deletes the account behind its password: a wrong one is refused; then signed out for good",
        async () => {
          page.on("dialog", (dialog) => dialog.accept());
          const form = page.locator("#delete-account-form");
          await form.getByLabel("Password").fill("not-the-password1");
          await form.getByRole("button", { name: "Delete my account" }).click();
          await page.getByText("The password is incorrect").waitFor();
          check(await page.locator("#signed-in").isVisible(), "signed out after a wrong password");
          await form.getByLabel("Password").fill(NEW_PASSWORD);
          await form.getByRole("button", { name: "Delete my account" }).click();
          await page.getByText("Your account was deleted.").waitFor();
          await page.locator("#signed-out").waitFor();
          await shot(page, "account-deleted");
          const login = await fetch(`${stack.baseUrl}/api/auth/login`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ phoneNumber: phone, password: NEW_PASSWORD }),
          });
          check(login.status === 401, `login after deletion: ${login.status}`);
        },
      ],
      [
        "no uncaught error, CSP violation or third-party request in either tab",
        async () => {
          check(problems.length === 0, problems.join("\n  "));
          check(foreign.length === 0, `third-party requests: ${foreign.join(", ")}`);
        },
      ],
    ],
    async () => {
      await shot(page, "failure").catch(() => {});
      if (second) await shot(second, "failure-second-tab").catch(() => {});
    },
  );
} catch (err) {
  failed += 1;
  console.error(`browser: ${err instanceof Error ? err.message : err}`);
} finally {
  await browser?.close();
  await relay?.close();
  await stack?.stop();
  rmSync(persistTo, { recursive: true, force: true });
}
console.log(`browser: screenshots in ${RESULTS}/, ${((Date.now() - startedAt) / 1000).toFixed(0)} s in all`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
