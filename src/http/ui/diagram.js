// State diagrams of XState machine definitions (GET /inspect/machines/{name}), drawn in SVG with a
// small layout of our own: every compound state is a box holding its children in columns ranked by
// their distance from its initial child, parallel regions stacked, transitions as curves between
// boxes (those between the same two states merged into one, labelled with every event). The layout
// is a pure function of the definition (`layoutMachine`), so it runs, and is tested, without a DOM.

const FONT_PX = 11;
const CHAR_W = 6.3;
const LEAF_H = 24;
const HEADER_H = 18;
const PAD = 8;
const GAP_X = 44;
const GAP_Y = 10;
const MIN_LEAF_W = 56;
const MAX_LABEL = 34;

/** A short label for an event type: `xstate.done.actor.0.worker.spawning` -> `done`. */
export function eventLabel(eventType, guard) {
  let e = eventType || 'always';
  if (e.startsWith('xstate.done.actor')) e = 'done';
  else if (e.startsWith('xstate.error.actor')) e = 'error';
  else if (e.startsWith('xstate.done.state')) e = 'regions done';
  else if (e.startsWith('xstate.after.')) e = `after ${e.split('.')[2]}`;
  const g = typeof guard === 'string' ? guard : guard && typeof guard === 'object' ? guard.type : undefined;
  return g ? `${e} [${g}]` : e;
}

function strip(target) {
  return String(target).replace(/^#/, '');
}

/** The definition as a tree: { id, key, type, children[], initial, parent }. */
function tree(def) {
  const byId = new Map();
  const walk = (n, parent) => {
    const node = {
      id: n.id,
      key: n.key,
      type: n.type,
      parent,
      children: [],
      initial: n.initial && n.initial.target && n.initial.target.length ? strip(n.initial.target[0]) : null,
      transitions: [...(n.transitions || []), ...(n.always || [])],
      depth: parent ? parent.depth + 1 : 0,
    };
    byId.set(node.id, node);
    for (const c of Object.values(n.states || {})) node.children.push(walk(c, node));
    return node;
  };
  return { root: walk(def, null), byId };
}

/** The child of `ancestor` that is `node` or contains it, or null. */
function childToward(ancestor, node) {
  let n = node;
  while (n && n.parent !== ancestor) n = n.parent;
  return n || null;
}

function textWidth(s, px = FONT_PX) {
  return s.length * CHAR_W * (px / FONT_PX);
}

/** Sizes every node (bottom-up) and places children relative to their parent's box. */
function measure(node, edges) {
  if (!node.children.length) {
    node.w = Math.max(MIN_LEAF_W, textWidth(node.key) + 2 * PAD);
    node.h = LEAF_H;
    return;
  }
  for (const c of node.children) measure(c, edges);
  if (node.type === 'parallel') {
    // Regions stacked, each as wide as the widest.
    let y = HEADER_H + PAD;
    const w = Math.max(...node.children.map((c) => c.w));
    for (const c of node.children) {
      c.x = PAD;
      c.y = y;
      c.w = w;
      y += c.h + GAP_Y;
    }
    node.w = Math.max(w + 2 * PAD, textWidth(node.key) + 2 * PAD);
    node.h = y - GAP_Y + PAD;
    return;
  }
  // Ranks: breadth-first distance from the initial child over transitions between the children
  // (a transition deeper inside counts for the children containing its ends).
  const next = new Map(node.children.map((c) => [c, new Set()]));
  for (const e of edges) {
    const a = childToward(node, e.fromNode);
    const b = childToward(node, e.toNode);
    if (a && b && a !== b) next.get(a).add(b);
  }
  // Longest path from the initial child once the edges that close a cycle (found depth first, in
  // definition order) are set aside: the main flow reads left to right, loops go back.
  const start = node.children.find((c) => c.id === node.initial) || node.children[0];
  const order = [start, ...node.children.filter((c) => c !== start)];
  const forward = new Map(node.children.map((c) => [c, []]));
  const mark = new Map();
  const dfs = (c) => {
    mark.set(c, 1);
    for (const d of next.get(c)) {
      if (mark.get(d) === 1 || d === start) continue; // back edge (nothing ranks before the initial state)
      forward.get(c).push(d);
      if (!mark.has(d)) dfs(d);
    }
    mark.set(c, 2);
  };
  for (const c of order) if (!mark.has(c)) dfs(c);
  const rank = new Map();
  const visit = (c) => {
    if (rank.has(c)) return rank.get(c);
    rank.set(c, 0);
    let r = 0;
    for (const [p, outs] of forward) if (outs.includes(c)) r = Math.max(r, visit(p) + 1);
    rank.set(c, r);
    return r;
  };
  for (const c of order) visit(c);
  const columns = [];
  for (const c of node.children) (columns[rank.get(c)] ||= []).push(c);
  let x = PAD;
  let bottom = 0;
  for (const col of columns.filter(Boolean)) {
    const w = Math.max(...col.map((c) => c.w));
    let y = HEADER_H + PAD;
    for (const c of col) {
      c.x = x + (w - c.w) / 2;
      c.y = y;
      y += c.h + GAP_Y;
    }
    bottom = Math.max(bottom, y - GAP_Y);
    x += w + GAP_X;
  }
  node.w = Math.max(x - GAP_X + PAD, textWidth(node.key) + 2 * PAD);
  node.h = bottom + PAD;
}

function place(node, ox, oy, out) {
  node.ax = ox + (node.x || 0);
  node.ay = oy + (node.y || 0);
  out.push(node);
  for (const c of node.children) place(c, node.ax, node.ay, out);
}

/** Where a curve from box a to box b leaves a and enters b, with its two control points. */
function route(a, b) {
  const acx = a.ax + a.w / 2;
  const bcx = b.ax + b.w / 2;
  if (b.ax >= a.ax + a.w - 1) {
    // Forward: right side to left side.
    const p0 = [a.ax + a.w, a.ay + Math.min(a.h / 2, LEAF_H / 2)];
    const p3 = [b.ax, b.ay + Math.min(b.h / 2, LEAF_H / 2)];
    const dx = Math.max(20, (p3[0] - p0[0]) / 2);
    return [p0, [p0[0] + dx, p0[1]], [p3[0] - dx, p3[1]], p3];
  }
  if (b.ax + b.w <= a.ax + 1) {
    // Backward: bottom of a, under both, to the bottom of b.
    const p0 = [acx, a.ay + a.h];
    const p3 = [bcx, b.ay + b.h];
    const low = Math.max(p0[1], p3[1]) + 26;
    return [p0, [p0[0], low], [p3[0], low], p3];
  }
  // Same column: down (or up) between their facing edges, bowed to the right.
  if (b.ay > a.ay) {
    const p0 = [a.ax + a.w * 0.75, a.ay + a.h];
    const p3 = [b.ax + b.w * 0.75, b.ay];
    return [p0, [p0[0] + 18, p0[1] + 10], [p3[0] + 18, p3[1] - 10], p3];
  }
  const p0 = [a.ax + a.w * 0.25, a.ay];
  const p3 = [b.ax + b.w * 0.25, b.ay + b.h];
  return [p0, [p0[0] - 18, p0[1] - 10], [p3[0] - 18, p3[1] + 10], p3];
}

function bezierAt(p, t) {
  const u = 1 - t;
  const f = (i) => u * u * u * p[0][i] + 3 * u * u * t * p[1][i] + 3 * u * t * t * p[2][i] + t * t * t * p[3][i];
  return [f(0), f(1)];
}

/**
 * The layout of a machine definition: boxes (absolute x, y, w, h, one per state, parents before
 * children), edges (one per pair of states with at least one transition between them: a cubic
 * curve, its label and where to put it) and the overall size.
 */
export function layoutMachine(def) {
  const { root, byId } = tree(def);
  const pairs = new Map();
  for (const n of byId.values()) {
    for (const t of n.transitions) {
      for (const target of t.target || []) {
        const to = byId.get(strip(target));
        const from = byId.get(strip(t.source || `#${n.id}`)) || n;
        if (!to || to === from) continue;
        const k = `${from.id}\u0000${to.id}`;
        let e = pairs.get(k);
        if (!e) pairs.set(k, (e = { from: from.id, to: to.id, fromNode: from, toNode: to, events: [] }));
        const label = eventLabel(t.eventType, t.guard);
        if (!e.events.includes(label)) e.events.push(label);
      }
    }
  }
  const edges = [...pairs.values()];
  measure(root, edges);
  const boxes = [];
  place(root, 0, 0, boxes);
  const out = edges.map((e) => {
    const pts = route(e.fromNode, e.toNode);
    const mid = bezierAt(pts, 0.5);
    let label = e.events.join(', ');
    if (label.length > MAX_LABEL) label = `${e.events[0]}${e.events.length > 1 ? ` +${e.events.length - 1}` : ''}`;
    return { from: e.from, to: e.to, events: e.events, label, points: pts, labelAt: mid };
  });
  let width = root.w;
  let height = root.h;
  for (const e of out) for (const p of e.points) height = Math.max(height, p[1] + 8);
  width += 2;
  return {
    id: root.id,
    width: Math.ceil(width),
    height: Math.ceil(height),
    boxes: boxes.map((b) => ({ id: b.id, key: b.key, type: b.type, depth: b.depth, leaf: b.children.length === 0, x: b.ax, y: b.ay, w: b.w, h: b.h })),
    edges: out,
  };
}

/** The ids of every state a snapshot value is in: 'a' or { a: { b: 'c' } } under the machine's id. */
export function activeStateIds(machineId, value) {
  const ids = [];
  const walk = (prefix, v) => {
    if (typeof v === 'string') ids.push(`${prefix}.${v}`);
    else if (v && typeof v === 'object') {
      for (const [k, sub] of Object.entries(v)) {
        ids.push(`${prefix}.${k}`);
        walk(`${prefix}.${k}`, sub);
      }
    }
  };
  walk(machineId, value);
  return ids;
}

const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Draws a layout into `container` (replacing its content); `setActive(ids)` highlights states. */
export function renderDiagram(container, layout, title) {
  const svg = el('svg', { viewBox: `-1 -1 ${layout.width + 2} ${layout.height + 2}`, class: 'machine', role: 'img' });
  // Scales down to its container, never up.
  svg.style.maxWidth = `${layout.width + 2}px`;
  svg.appendChild(el('title', {}, title || layout.id));
  const defs = el('defs');
  const marker = el('marker', { id: `arrow-${layout.id}`, viewBox: '0 0 8 8', refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.appendChild(el('path', { d: 'M0,0 L8,4 L0,8 z', class: 'arrowhead' }));
  defs.appendChild(marker);
  svg.appendChild(defs);
  const boxes = new Map();
  for (const b of layout.boxes) {
    const g = el('g', { class: `state ${b.leaf ? 'leaf' : 'group'} type-${b.type}`, 'data-state-id': b.id });
    g.appendChild(el('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: b.leaf ? 6 : 8 }));
    const label = b.depth === 0 ? layout.id : b.key;
    if (b.leaf) g.appendChild(el('text', { x: b.x + b.w / 2, y: b.y + b.h / 2 + 4, 'text-anchor': 'middle' }, label));
    else g.appendChild(el('text', { x: b.x + 6, y: b.y + 13, class: 'group-label' }, label));
    svg.appendChild(g);
    boxes.set(b.id, g);
  }
  const edgeLayer = el('g', { class: 'edges' });
  for (const e of layout.edges) {
    const [p0, c1, c2, p3] = e.points;
    const g = el('g', { class: 'edge', 'data-from': e.from, 'data-to': e.to });
    const d = `M${p0[0]},${p0[1]} C${c1[0]},${c1[1]} ${c2[0]},${c2[1]} ${p3[0]},${p3[1]}`;
    g.appendChild(el('path', { d, 'marker-end': `url(#arrow-${layout.id})` }));
    // A wide invisible twin, so the pointer finds the edge (its label shows on hover).
    g.appendChild(el('path', { d, class: 'hit' }));
    const t = el('text', { x: e.labelAt[0], y: e.labelAt[1] - 3, 'text-anchor': 'middle', class: 'edge-label' }, e.label);
    t.appendChild(el('title', {}, e.events.join('\n')));
    g.appendChild(t);
    edgeLayer.appendChild(g);
  }
  svg.appendChild(edgeLayer);
  container.replaceChildren(svg);
  let active = new Set();
  let leaves = new Set();
  return {
    /** Highlights exactly `ids` (the states a snapshot is in); only what changed is touched. */
    setActive(ids) {
      const next = new Set(ids.filter((id) => boxes.has(id)));
      const nextLeaves = new Set([...next].filter((id) => ![...next].some((o) => o.startsWith(`${id}.`))));
      for (const id of active) if (!next.has(id)) boxes.get(id).classList.remove('active');
      for (const id of leaves) if (!nextLeaves.has(id)) boxes.get(id).classList.remove('active-leaf');
      for (const id of next) if (!active.has(id)) boxes.get(id).classList.add('active');
      for (const id of nextLeaves) if (!leaves.has(id)) boxes.get(id).classList.add('active-leaf');
      active = next;
      leaves = nextLeaves;
      for (const e of edgeLayer.children) {
        const on = next.has(e.getAttribute('data-from'));
        if (e.classList.contains('from-active') !== on) e.classList.toggle('from-active', on);
      }
    },
  };
}
