// The streamfleet dashboard: nodes and streams live from GET /dashboard/feed (SSE), each stream's
// input and output thumbnails, a stream's output playing live, its stream and worker machines drawn
// with their current states from GET /inspect/events (SSE), and every action through the REST API.
import { ApiError, auth, call, ensureSession, signIn, signOut } from './api.js';
import { activeStateIds, eventLabel, layoutMachine, renderDiagram } from './diagram.js';
import { LivePlayer } from './player.js';
import { sparkline } from './sparkline.js';

const $ = (sel, root = document) => root.querySelector(sel);
const NOISY = new Set(['HEARTBEAT', 'STATS', 'FRAME_STATS', 'WORKER_STATS']);
const MAX_LOG = 300;
const WORKER_TOP = new Set(['spawning', 'live', 'restarting', 'waitingForBus', 'failed', 'stopping', 'terminated']);

const state = {
  node: null,
  streams: new Map(),
  history: new Map(),
  historySamples: 300,
  selected: null,
  machines: {},
  layouts: {},
  inspect: null,
  feed: null,
  diagrams: new Map(),
  lastState: new Map(),
  trickleUrl: null,
  nodesFromApi: null,
};

const player = new LivePlayer($('#player'), $('#player-status'));

function fmt(n, d = 1) {
  return Number.isFinite(n) ? n.toFixed(d) : '–';
}

function clock(t) {
  const d = new Date(t);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function text(el, value) {
  if (el && el.textContent !== value) el.textContent = value;
}

function archName(a) {
  return { dedicated_worker_per_stream: 'dedicated', shared_single_process: 'shared', prompt_per_worker: 'prompt worker' }[a] ?? a;
}

function pidsOf(s) {
  const ws = s.worker_status?.workers ?? [s.worker_status];
  return [...new Set(ws.map((w) => w?.pid).filter((p) => p))];
}

function dropsText(d) {
  const e = Object.entries(d || {}).filter(([, n]) => n > 0);
  return e.length ? e.map(([k, n]) => `${k} ${n}`).join(', ') : 'none';
}

// ---- nodes --------------------------------------------------------------------------------------

/** Nodes: the cluster's list when the service has one (GET /nodes), else this node from the feed. */
async function refreshNodes() {
  let nodes = null;
  try {
    const r = await call('GET', '/nodes');
    nodes = Array.isArray(r) ? r : Array.isArray(r?.nodes) ? r.nodes : null;
  } catch {
    nodes = null;
  }
  state.nodesFromApi = nodes;
  renderNodes(nodes ?? (state.node ? [state.node] : []));
}

function renderNodes(nodes) {
  const box = $('#nodes');
  box.replaceChildren(
    ...nodes.map((n) => {
      const id = n.node_id ?? n.nodeId;
      const hb = n.heartbeat_at ?? n.heartbeatAt;
      const now = n.now ?? Date.now();
      const div = document.createElement('div');
      div.className = `node ${n.ready === false || (n.state && n.state !== 'active') ? 'not-ready' : ''}`;
      div.dataset.nodeId = id;
      const ageMs = n.heartbeat_age_ms ?? (hb ? now - hb : null);
      const age = ageMs !== null ? `${fmt(ageMs / 1000, 1)} s ago` : 'never';
      div.innerHTML = '<b class="node-id"></b> <span class="load"></span> <span class="hb muted"></span> <span class="reasons error"></span>';
      text(div.querySelector('.node-id'), id);
      text(div.querySelector('.load'), `${n.running} / ${n.capacity} streams`);
      text(div.querySelector('.hb'), `heartbeat ${age}`);
      text(div.querySelector('.reasons'), [...(n.state && n.state !== 'active' ? [n.state] : []), ...(n.reasons || [])].join(', '));
      return div;
    }),
  );
}

// ---- the stream list ------------------------------------------------------------------------------

function rowFor(id) {
  let row = document.querySelector(`.stream[data-id="${CSS.escape(id)}"]`);
  if (row) return row;
  row = document.createElement('article');
  row.className = 'stream';
  row.dataset.id = id;
  row.innerHTML = `
    <div class="thumbs">
      <figure><img class="thumb thumb-input" alt="input"><figcaption>input</figcaption></figure>
      <figure><img class="thumb thumb-output" alt="output"><figcaption>output</figcaption></figure>
    </div>
    <div class="info">
      <div class="title"><a class="sid"></a> <span class="badge state"></span> <span class="arch muted"></span></div>
      <dl class="figs">
        <div><dt>worker pid</dt><dd class="pids"></dd></div>
        <div><dt>restarts</dt><dd class="restarts"></dd></div>
        <div><dt>fps in / out</dt><dd><span class="fps-in"></span> / <span class="fps-out"></span></dd></div>
        <div><dt>latency p50 / p99 ms</dt><dd><span class="lat-p50"></span> / <span class="lat-p99"></span></dd></div>
        <div><dt>frames</dt><dd class="frames"></dd></div>
        <div><dt>drops</dt><dd class="drops"></dd></div>
        <div><dt>prompt</dt><dd class="prompt"></dd></div>
      </dl>
      <div class="sparks">
        <svg class="spark spark-fps" aria-label="fps in and out"></svg>
        <svg class="spark spark-lat" aria-label="latency p50 and p99"></svg>
      </div>
    </div>`;
  const a = row.querySelector('.sid');
  a.textContent = id;
  a.href = `#stream=${encodeURIComponent(id)}`;
  $('#streams').appendChild(row);
  return row;
}

function renderStream(s) {
  const row = rowFor(s.request_id);
  row.classList.toggle('selected', state.selected === s.request_id);
  const badge = row.querySelector('.state');
  text(badge, s.state);
  badge.className = `badge state state-${s.state}${s.degraded ? ' degraded' : ''}`;
  text(row.querySelector('.arch'), archName(s.architecture));
  text(row.querySelector('.pids'), pidsOf(s).join(', ') || '–');
  text(row.querySelector('.restarts'), String(s.restart_count ?? s.worker_status?.restart_count ?? 0));
  text(row.querySelector('.frames'), String(s.frame_count));
  text(row.querySelector('.drops'), dropsText(s.drops_by_reason));
  text(row.querySelector('.prompt'), s.active_prompt_id ?? '–');
  if (!state.history.get(s.request_id)?.length) renderFigures(row, s.stats);
  for (const side of ['input', 'output']) {
    const t = s.thumbnails?.[side];
    if (t) wantThumb(s.request_id, side, t.seq);
  }
  if (state.selected === s.request_id) renderDetailHead(s);
}

function renderFigures(row, f) {
  text(row.querySelector('.fps-in'), fmt(f.fps_in));
  text(row.querySelector('.fps-out'), fmt(f.fps_out));
  text(row.querySelector('.lat-p50'), fmt(f.latency_p50_ms));
  text(row.querySelector('.lat-p99'), fmt(f.latency_p99_ms));
  row.dataset.statsAt = String(Date.now());
}

function renderSparks(row, id) {
  const h = state.history.get(id) ?? [];
  sparkline(row.querySelector('.spark-fps'), [
    { values: h.map((x) => x.fps_in), cls: 'l-in' },
    { values: h.map((x) => x.fps_out), cls: 'l-out' },
  ], { floor: 1, unit: ' fps' });
  sparkline(row.querySelector('.spark-lat'), [
    { values: h.map((x) => x.latency_p50_ms), cls: 'l-p50' },
    { values: h.map((x) => x.latency_p99_ms), cls: 'l-p99' },
  ], { floor: 10, unit: ' ms' });
}

function setStreams(list) {
  const ids = new Set(list.map((s) => s.request_id));
  for (const s of list) {
    state.streams.set(s.request_id, s);
    renderStream(s);
  }
  for (const id of [...state.streams.keys()]) {
    if (ids.has(id)) continue;
    state.streams.delete(id);
    state.history.delete(id);
    document.querySelector(`.stream[data-id="${CSS.escape(id)}"]`)?.remove();
  }
  text($('#stream-count'), `(${list.length})`);
  $('#no-streams').hidden = list.length > 0;
}

function onStats(m) {
  const h = state.history.get(m.stream_id) ?? [];
  h.push(m.sample);
  if (h.length > state.historySamples) h.splice(0, h.length - state.historySamples);
  state.history.set(m.stream_id, h);
  const s = state.streams.get(m.stream_id);
  if (!s) return;
  s.drops_by_reason = m.drops_by_reason;
  s.frame_count = m.frame_count;
  const row = rowFor(m.stream_id);
  renderFigures(row, m.sample);
  text(row.querySelector('.frames'), String(m.frame_count));
  text(row.querySelector('.drops'), dropsText(m.drops_by_reason));
  renderSparks(row, m.stream_id);
}

// ---- thumbnails -----------------------------------------------------------------------------------
// Each new thumbnail is fetched whole, then shown from a blob: URL, so the <img> never shows half an
// image or a gap while the next one loads; at most one fetch per image is in flight, and the newest
// wanted one is fetched next.

function wantThumb(id, side, seq) {
  const row = document.querySelector(`.stream[data-id="${CSS.escape(id)}"]`);
  const img = row?.querySelector(`.thumb-${side}`);
  if (!img) return;
  if (Number(img.dataset.want || 0) >= seq) return;
  img.dataset.want = String(seq);
  if (!img.dataset.loading) void loadThumb(img, id, side);
}

async function loadThumb(img, id, side) {
  const want = Number(img.dataset.want);
  img.dataset.loading = String(want);
  try {
    const res = await fetch(`/stream/${encodeURIComponent(id)}/thumbnail/${side}`, { credentials: 'same-origin', cache: 'no-store' });
    if (res.ok) {
      const seq = Number(res.headers.get('x-thumbnail-seq') || want);
      const url = URL.createObjectURL(await res.blob());
      await new Promise((resolve) => {
        const done = () => {
          img.removeEventListener('load', done);
          img.removeEventListener('error', done);
          resolve();
        };
        img.addEventListener('load', done);
        img.addEventListener('error', done);
        const old = img.dataset.blob;
        img.src = url;
        img.dataset.blob = url;
        if (old) URL.revokeObjectURL(old);
      });
      img.dataset.seq = String(seq);
      img.dataset.loadedAt = String(Date.now());
    }
  } catch {
    /* the next thumbnail will do */
  } finally {
    delete img.dataset.loading;
  }
  if (Number(img.dataset.want) > want && img.isConnected) void loadThumb(img, id, side);
}

// ---- the live feed --------------------------------------------------------------------------------

function connectFeed() {
  state.feed?.close();
  const es = new EventSource('/dashboard/feed');
  state.feed = es;
  const conn = $('#conn');
  es.addEventListener('open', () => {
    text(conn, 'live');
    conn.className = 'conn live';
  });
  es.addEventListener('error', async () => {
    text(conn, 'reconnecting');
    conn.className = 'conn down';
    // A refused feed (401: the session ended) does not come back by itself.
    if (es.readyState === EventSource.CLOSED) {
      const s = await ensureSession().catch(() => 'need-token');
      if (s === 'need-token') askToken();
      else setTimeout(connectFeed, 1_000);
    }
  });
  es.addEventListener('snapshot', (ev) => {
    const m = JSON.parse(ev.data);
    state.historySamples = m.history_samples ?? state.historySamples;
    state.trickleUrl = m.trickle_url ?? null;
    for (const [id, h] of Object.entries(m.history || {})) state.history.set(id, h.slice());
    onNode(m.node, m.nodes);
    setStreams(m.streams);
    for (const s of m.streams) renderSparks(rowFor(s.request_id), s.request_id);
    showFeedError(m.error);
    route();
  });
  es.addEventListener('streams', (ev) => {
    const m = JSON.parse(ev.data);
    onNode(m.node, m.nodes);
    setStreams(m.streams);
    showFeedError(m.error);
  });
  es.addEventListener('stats', (ev) => onStats(JSON.parse(ev.data)));
  es.addEventListener('thumbnail', (ev) => {
    const m = JSON.parse(ev.data);
    wantThumb(m.stream_id, m.side, m.seq);
  });
}

/** The feed carries this node and the cluster's nodes (the service's cluster view, pushed). */
function onNode(n, nodes) {
  if (!n) return;
  const first = !state.node;
  state.node = n;
  if (Array.isArray(nodes) && nodes.length) {
    state.nodesFromApi = nodes;
    renderNodes(nodes);
  } else if (first) void refreshNodes();
  else renderNodes(state.nodesFromApi ?? [n]);
}

function showFeedError(e) {
  const p = $('#feed-error');
  p.hidden = !e;
  text(p, e ? `The stream list is not available: ${e}` : '');
}

// ---- one stream: video, actors, events, actions ---------------------------------------------------

function route() {
  const m = /^#stream=(.+)$/.exec(location.hash);
  const id = m ? decodeURIComponent(m[1]) : null;
  if (id === state.selected) return;
  select(id);
}

function select(id) {
  state.selected = id;
  for (const row of document.querySelectorAll('.stream')) row.classList.toggle('selected', row.dataset.id === id);
  state.inspect?.close();
  state.inspect = null;
  state.diagrams.clear();
  state.lastState.clear();
  $('#diagrams').replaceChildren();
  $('#events').replaceChildren();
  text($('#action-result'), '');
  $('#update-errors').replaceChildren();
  if (!id) {
    $('#detail').hidden = true;
    player.stop();
    return;
  }
  $('#detail').hidden = false;
  text($('#detail-id'), id);
  const s = state.streams.get(id);
  if (s) renderDetailHead(s);
  player.play(`/stream/${encodeURIComponent(id)}/output.ts`);
  void setUpActors(id);
}

function renderDetailHead(s) {
  const b = $('#detail-state');
  text(b, s.state);
  b.className = `badge state-${s.state}`;
  const sel = $('#switch-select');
  const ids = s.prompt_ids ?? [];
  if (sel.dataset.ids !== ids.join(',')) {
    sel.dataset.ids = ids.join(',');
    sel.replaceChildren(...ids.map((p) => new Option(p, p)));
  }
  if (sel.value !== s.active_prompt_id && s.active_prompt_id && document.activeElement !== sel) sel.value = s.active_prompt_id;
  $('#switch-form').hidden = s.architecture !== 'prompt_per_worker';
  $('#act-restart').disabled = s.architecture !== 'dedicated_worker_per_stream';
}

async function machine(name) {
  if (!state.layouts[name]) {
    state.machines[name] = await call('GET', `/inspect/machines/${name}`);
    state.layouts[name] = layoutMachine(state.machines[name]);
  }
  return state.layouts[name];
}

function diagramFor(actorId, kind, title) {
  let d = state.diagrams.get(actorId);
  if (d) return d;
  const wrap = document.createElement('figure');
  wrap.className = `diagram diagram-${kind}`;
  wrap.dataset.actor = actorId;
  const cap = document.createElement('figcaption');
  cap.textContent = title;
  const box = document.createElement('div');
  box.className = 'svg-box';
  wrap.append(cap, box);
  // The stream's machine first, then its workers in order of appearance.
  if (kind === 'stream') $('#diagrams').prepend(wrap);
  else $('#diagrams').append(wrap);
  d = { kind, view: renderDiagram(box, state.layouts[kind], title), caption: cap, title };
  state.diagrams.set(actorId, d);
  return d;
}

async function setUpActors(id) {
  await Promise.all([machine('stream'), machine('worker')]);
  if (state.selected !== id) return;
  // Current states now, then every change as it happens (replay: the recent past too).
  const { actors } = await call('GET', '/inspect/actors');
  if (state.selected !== id) return;
  for (const a of actors.filter((x) => x.stream_id === id)) {
    if (a.machine === 'stream') diagramFor(id, 'stream', `stream ${id}`).view.setActive(activeStateIds('stream', a.state));
    if (a.machine === 'worker') {
      const child = a.id.slice(id.length + 1);
      diagramFor(child, 'worker', `worker ${child}`).view.setActive(activeStateIds('worker', a.state));
    }
  }
  const es = new EventSource(`/inspect/events?stream=${encodeURIComponent(id)}&replay=true`);
  state.inspect = es;
  const onRecord = (ev) => {
    if (state.inspect !== es) return;
    onInspection(id, JSON.parse(ev.data));
  };
  for (const type of ['@xstate.snapshot', '@xstate.event', '@xstate.actor']) es.addEventListener(type, onRecord);
}

function statePath(value) {
  if (typeof value === 'string') return value;
  if (!value || typeof value !== 'object') return String(value);
  return Object.entries(value)
    .map(([k, v]) => (typeof v === 'string' ? `${k}.${v}` : `${k}.${statePath(v)}`))
    .join(' | ');
}

function onInspection(streamId, r) {
  const actor = r.actor_id;
  if (r.type === '@xstate.snapshot' && r.snapshot && r.snapshot.value !== undefined && r.snapshot.value !== null) {
    const value = r.snapshot.value;
    const top = typeof value === 'string' ? value : Object.keys(value)[0];
    let kind = null;
    if (actor === streamId) kind = 'stream';
    else if (WORKER_TOP.has(top)) kind = 'worker';
    if (!kind) return;
    const d = diagramFor(actor, kind, kind === 'stream' ? `stream ${streamId}` : `worker ${actor}`);
    d.view.setActive(activeStateIds(kind, value));
    const path = statePath(value);
    if (state.lastState.get(actor) !== path) {
      const before = state.lastState.get(actor);
      state.lastState.set(actor, path);
      logLine(r.time, `state state-${kind}`, `${kind === 'stream' ? 'stream' : `worker ${actor}`}: ${before ? `${before} → ` : ''}${path}`);
    }
    return;
  }
  if (r.type === '@xstate.event' && r.event) {
    const type = r.event.type ?? '?';
    // Heartbeats and stats, and the bookkeeping of invoked helper actors (ids like 0.worker.live),
    // only when asked for.
    const noisy = NOISY.has(type) || type === 'xstate.init' || type.startsWith('xstate.promise') || actor.includes('.');
    const detail = r.event.reason ?? r.event.error?.message ?? '';
    const who = actor === streamId ? 'stream' : `worker ${actor}`;
    logLine(r.time, noisy ? 'event noisy' : 'event', `${who}: ${eventLabel(type)}${detail ? ` (${detail})` : ''}`);
  }
}

function logLine(t, cls, msg) {
  const ol = $('#events');
  const li = document.createElement('li');
  li.className = cls;
  li.dataset.time = String(t);
  const time = document.createElement('time');
  time.textContent = clock(t);
  const span = document.createElement('span');
  span.textContent = msg;
  li.append(time, ' ', span);
  ol.prepend(li);
  while (ol.children.length > MAX_LOG) ol.lastElementChild.remove();
}

// ---- prompts and their validation errors ----------------------------------------------------------

/** The request fields for a prompt textarea: {} (empty: the default prompt), {prompts: [...]} for an
 *  array, else {prompt: "<the text>"}: the service parses and validates it, as for any client. */
function promptFields(textValue) {
  const t = textValue.trim();
  if (!t) return {};
  try {
    const v = JSON.parse(t);
    if (Array.isArray(v)) return { prompts: v };
  } catch {
    /* the endpoint says what is wrong with it */
  }
  return { prompt: t };
}

/** Every node of the prompt(s) in the textarea, with ComfyUI's errors beside the node they name. */
function renderPromptErrors(box, textValue, err) {
  box.replaceChildren();
  if (!err) return;
  const head = document.createElement('p');
  head.className = 'error';
  head.textContent = `${err.body?.error ?? 'Error'}: ${err.body?.message ?? err.message}`;
  box.appendChild(head);
  const errors = err.body?.validation_errors ?? [];
  let prompts = [];
  try {
    const v = JSON.parse(textValue);
    prompts = Array.isArray(v) ? v : [v];
  } catch {
    prompts = [];
  }
  const orphan = [];
  prompts.forEach((p, index) => {
    if (!p || typeof p !== 'object') return;
    const ul = document.createElement('ul');
    ul.className = 'prompt-nodes';
    ul.dataset.promptIndex = String(index);
    for (const [nodeId, node] of Object.entries(p)) {
      const li = document.createElement('li');
      li.dataset.nodeId = nodeId;
      const mine = errors.filter((e) => String(e.node_id) === nodeId && (e.prompt_index === undefined || e.prompt_index === index));
      li.className = mine.length ? 'node has-errors' : 'node';
      li.innerHTML = '<code class="node-id"></code> <span class="node-type"></span> <span class="node-errors"></span>';
      text(li.querySelector('.node-id'), nodeId);
      text(li.querySelector('.node-type'), node?.class_type ?? '?');
      text(li.querySelector('.node-errors'), mine.map((e) => `${e.message}${e.details ? `: ${e.details}` : ''}${e.input_name && e.input_name !== e.details ? ` (input ${e.input_name})` : ''}`).join('; '));
      ul.appendChild(li);
    }
    box.appendChild(ul);
  });
  for (const e of errors) {
    const placed = e.node_id !== undefined && prompts[e.prompt_index ?? 0]?.[String(e.node_id)] !== undefined;
    if (!placed) orphan.push(e);
  }
  if (orphan.length) {
    const ul = document.createElement('ul');
    ul.className = 'prompt-errors-other';
    for (const e of orphan) {
      const li = document.createElement('li');
      li.textContent = `${e.node_id !== undefined ? `node ${e.node_id}: ` : ''}${e.message ?? e.error_type}${e.details ? `: ${e.details}` : ''}`;
      ul.appendChild(li);
    }
    box.appendChild(ul);
  }
}

// ---- forms and buttons ----------------------------------------------------------------------------

function result(el, msg, ok) {
  el.textContent = msg;
  el.className = `result ${ok ? 'ok' : 'error'}`;
}

async function act(fn, okMsg) {
  const out = $('#action-result');
  result(out, 'working…', true);
  try {
    const r = await fn();
    result(out, okMsg(r), true);
    return r;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) askToken();
    result(out, `${err.body?.error ?? 'Error'}: ${err.message}`, false);
    throw err;
  }
}

function wireActions() {
  $('#close-detail').addEventListener('click', () => {
    location.hash = '';
  });
  $('#act-restart').addEventListener('click', () => {
    const id = state.selected;
    void act(() => call('POST', `/stream/${encodeURIComponent(id)}/restart-worker`), (r) => r.message).catch(() => undefined);
  });
  $('#act-stop').addEventListener('click', () => {
    const id = state.selected;
    void act(() => call('POST', `/stream/${encodeURIComponent(id)}/stop`), (r) => r.message).catch(() => undefined);
  });
  $('#switch-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = state.selected;
    const promptId = $('#switch-select').value;
    void act(() => call('POST', `/stream/${encodeURIComponent(id)}/switch-prompt`, { prompt_id: promptId }), (r) => `${r.message} (active: ${r.active_prompt_id})`).catch(() => undefined);
  });
  $('#update-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = state.selected;
    const f = ev.target;
    const promptText = f.prompt.value;
    const body = promptFields(promptText);
    const parameters = {};
    if (f.width.value) parameters.width = Number(f.width.value);
    if (f.height.value) parameters.height = Number(f.height.value);
    if (Object.keys(parameters).length) body.parameters = parameters;
    const box = $('#update-errors');
    box.replaceChildren();
    void act(() => call('POST', `/stream/${encodeURIComponent(id)}/update-prompts`, body), (r) => `${r.message}: ${r.prompts_count} prompt(s)${r.warmup_performed ? ', re-warmed' : ''}`).catch((err) =>
      renderPromptErrors(box, promptText, err),
    );
  });

  const dialog = $('#start-dialog');
  const form = $('#start-form');
  const edited = new Set();
  for (const name of ['subscribe_url', 'publish_url']) form[name].addEventListener('input', () => edited.add(name));
  const fillUrls = () => {
    const base = state.trickleUrl;
    const id = form.id.value.trim();
    if (!base || !id) return;
    if (!edited.has('subscribe_url')) form.subscribe_url.value = `${base}/${id}-in`;
    if (!edited.has('publish_url')) form.publish_url.value = `${base}/${id}-out`;
  };
  form.id.addEventListener('input', fillUrls);
  $('#open-start').addEventListener('click', () => {
    $('#start-errors').replaceChildren();
    text($('#start-result'), '');
    dialog.showModal();
  });
  $('#start-cancel').addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const promptText = form.prompt.value;
    const arch = form.architecture.value;
    const id = form.id.value.trim();
    const body = {
      gateway_request_id: id,
      subscribe_url: form.subscribe_url.value.trim(),
      publish_url: form.publish_url.value.trim(),
      params: {
        width: Number(form.width.value),
        height: Number(form.height.value),
        dedicated_worker: arch !== 'shared',
        use_prompt_worker: arch === 'prompt_worker',
        ...promptFields(promptText),
      },
    };
    const out = $('#start-result');
    const box = $('#start-errors');
    box.replaceChildren();
    result(out, `starting ${id}…`, true);
    $('#start-submit').disabled = true;
    try {
      const r = await call('POST', '/stream/start', body);
      result(out, r.message, true);
      dialog.close();
      location.hash = `#stream=${encodeURIComponent(id)}`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) askToken();
      result(out, `${err.status ?? ''} ${err.body?.error ?? 'Error'}: ${err.message}`, false);
      if (err instanceof ApiError && err.body?.validation_errors) renderPromptErrors(box, promptText, err);
    } finally {
      $('#start-submit').disabled = false;
    }
  });
  $('#logout').addEventListener('click', async () => {
    await signOut();
    location.reload();
  });
  $('#show-noisy').addEventListener('change', (ev) => $('#events').classList.toggle('show-noisy', ev.target.checked));
  window.addEventListener('hashchange', route);
}

// ---- sign-in --------------------------------------------------------------------------------------

let loginWaiters = [];

function askToken() {
  const dlg = $('#login');
  if (!dlg.open) dlg.showModal();
  return new Promise((resolve) => loginWaiters.push(resolve));
}

function wireLogin() {
  $('#login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = ev.target.token.value;
    const ok = await signIn(token).catch(() => false);
    if (!ok) {
      text($('#login-error'), 'That token was refused.');
      return;
    }
    text($('#login-error'), '');
    $('#login').close();
    $('#logout').hidden = false;
    const w = loginWaiters;
    loginWaiters = [];
    for (const r of w) r();
    connectFeed();
  });
}

async function boot() {
  wireActions();
  wireLogin();
  const s = await ensureSession();
  if (s === 'need-token') await askToken();
  else {
    $('#logout').hidden = s === 'open' || !auth.token;
    connectFeed();
  }
  setInterval(() => void refreshNodes(), 5_000);
}

void boot();
