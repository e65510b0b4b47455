// Small DOM helpers: elements from data (never HTML strings from the API), times, labels.

/** h("p", {class: "x", onclick: fn}, "text", child) — attributes with false/null/undefined are left out. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600],
               ["minute", 60], ["second", 1]];
const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const absolute = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "short" });

export function timeAgo(iso, now = Date.now()) {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  if (Math.abs(seconds) < 10) return "just now";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

/** A <time> showing "5 minutes ago", with the exact moment as its title and datetime. */
export function timeEl(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, iso);
  return h("time", { datetime: iso, title: absolute.format(date) }, timeAgo(iso));
}

export function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : absolute.format(date);
}

/** "agentic_fixer" -> "agentic fixer" */
export function featureName(feature) {
  return String(feature).replace(/_/g, " ");
}

export function listInWords(items) {
  if (items.length <= 1) return items.join("");
  return items.slice(0, -1).join(", ") + " and " + items[items.length - 1];
}

/** Re-render while keeping keyboard focus on "the same" control (same data-action and data-id). */
export function keepingFocus(render) {
  const active = document.activeElement;
  const action = active?.dataset?.action;
  const id = active?.dataset?.id;
  render();
  if (action && !document.contains(active)) {
    const again = document.querySelector(`[data-action="${CSS.escape(action)}"][data-id="${CSS.escape(id || "")}"]`);
    if (again && !again.disabled) again.focus();
  }
}
