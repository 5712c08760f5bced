// expertloop web chat: submits answers in place, shows diffs and shortcuts. No build step.
"use strict";
const body = document.body;
const token = body.dataset.token;
const csrf = body.dataset.csrf;
const current = document.getElementById("current");
const log = document.getElementById("log");

function post(path, data) {
  data.set("csrf", csrf);
  return fetch(`/chat/${token}/${path}`, {
    method: "POST", body: data, headers: {"X-Requested-With": "fetch"},
  });
}

async function show(response) {
  if (!response.ok) {
    addBubble(await response.text(), "refused");
    current.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    return;
  }
  const update = await response.json();
  update.log.forEach((html) => log.insertAdjacentHTML("beforeend", html));
  current.innerHTML = update.current;
  setUpCard();
  log.lastElementChild?.scrollIntoView({block: "nearest"});
}

function addBubble(text, kind) {
  const p = document.createElement("p");
  p.className = `bubble ${kind}`;
  p.textContent = text;
  log.append(p);
}

current.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form, event.submitter);
  // "None acceptable" sits in the card's second form: it carries the line of why typed above.
  const why = current.querySelector("input[name=rationale]");
  if (why && !data.has("rationale")) data.set("rationale", why.value);
  current.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  await opening;  // the server hears "opened" before the answer, so the timing is right
  await show(await post("answer", data));
});

// The second click of a double-click lands on the card that replaced the first one's: ignore it,
// or a double-click would answer a card the expert has not read.
current.addEventListener("click", (event) => {
  if (event.detail > 1 && event.target.closest("form.answer button")) event.preventDefault();
}, true);

// Enter in the line of why must not press the form's first button (which would be an answer
// the expert did not choose): it does nothing there.
current.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target.matches("input[name=rationale]")) event.preventDefault();
});

// The expert's first touch of a card starts their active time.
let openedLease = null;
let opening = Promise.resolve();
function markOpened() {
  const card = document.getElementById("card");
  if (!card || openedLease === card.dataset.lease) return;
  openedLease = card.dataset.lease;
  const data = new FormData();
  data.set("lease", openedLease);
  opening = post("opened", data).catch(() => {});
}
["pointerdown", "keydown", "focusin"].forEach((type) =>
  current.addEventListener(type, markOpened));

document.addEventListener("keydown", (event) => {
  if (event.target.closest("textarea, input, select") || event.metaKey || event.ctrlKey) return;
  if (event.repeat) return;  // a held key answers one card, not the ones after it
  const button = current.querySelector(`[data-key="${CSS.escape(event.key)}"]`);
  if (button && !button.disabled) {
    markOpened();
    event.preventDefault();
    button.click();
  }
});

// A line diff of the expert's text against the draft, as they type.
function lineDiff(before, after) {
  const a = before.split("\n"), b = after.split("\n");
  const n = a.length, m = b.length;
  const lcs = Array.from({length: n + 1}, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { i++; j++; }
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) out.push("- " + a[i++]);
    else out.push("+ " + b[j++]);
  }
  return out.join("\n");
}

function setUpCard() {
  const card = document.getElementById("card");
  if (!card) return;
  const seen = `seen:${card.dataset.campaign}`;
  const instructions = card.querySelector("details.instructions");
  if (instructions && !localStorage.getItem(seen)) {
    instructions.open = true;
    localStorage.setItem(seen, "1");
  }
  card.querySelectorAll("textarea[data-draft]").forEach((area) => {
    const diff = area.parentElement.querySelector("pre.diff");
    area.addEventListener("input", () => { diff.textContent = lineDiff(area.dataset.draft, area.value); });
  });
  card.querySelector("button.override")?.addEventListener("click", () => {
    const fields = card.querySelector(".override-fields");
    fields.hidden = false;
    fields.querySelector("textarea").focus();
  });
  setUpRank(card);
}

function setUpRank(card) {
  const order = [];
  const output = card.querySelector("output.order");
  if (!output) return;
  const hidden = card.querySelector("input[name=order]");
  const confirm = card.querySelector("button.confirm");
  const picks = card.querySelectorAll("button.pick");
  const refresh = () => {
    output.textContent = order.join(" > ") || "—";
    hidden.value = order.join(",");
    confirm.disabled = order.length !== picks.length;
    picks.forEach((b) => { b.disabled = order.includes(b.dataset.pick); });
  };
  picks.forEach((b) => b.addEventListener("click", () => { order.push(b.dataset.pick); refresh(); }));
  card.querySelector("button.undo").addEventListener("click", () => { order.pop(); refresh(); });
  refresh();
}

document.getElementById("stats-button").addEventListener("click", async () => {
  const panel = document.getElementById("stats");
  if (!panel.hidden) { panel.hidden = true; return; }
  const response = await fetch(`/chat/${token}/stats`);
  panel.innerHTML = await response.text();
  panel.hidden = false;
});

const pause = document.getElementById("pause-button");
pause.addEventListener("click", async () => {
  const resuming = pause.textContent === "Resume";
  await show(await post(resuming ? "resume" : "pause", new FormData()));
  pause.textContent = resuming ? "Pause" : "Resume";
});

setUpCard();
