/**
 * The only way pages make elements: attributes and text, never HTML strings. Message text is
 * set with textContent, so whatever a member typed shows as text and runs nothing.
 */

type Attributes = Record<string, string | boolean | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Node | string | null)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** An element the page's HTML must have; a missing one is a bug in the page, so say which. */
export function required<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
}

/** Shows exactly one of the page's views. */
export function showView(id: string): void {
  for (const view of document.querySelectorAll<HTMLElement>('[data-view]')) view.hidden = view.id !== id;
}
