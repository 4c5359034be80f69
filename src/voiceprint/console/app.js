// The voiceprint console: plain JavaScript over the Coze-compatible API, no build step, no CDN.
"use strict";

const API = "/v1/audio/voiceprint_groups";
const TEXT = {
  en: {
    title: "Voiceprints", signIn: "Sign in", token: "API token", signOut: "Sign out", lang: "中文",
    groups: "Groups", search: "Search by name", newGroup: "New group name", create: "Create",
    rename: "Rename", delete: "Delete", voiceprints: "voiceprints", voiceprintList: "Voiceprints", back: "All groups",
    confirmGroup: "Delete this group and every voiceprint in it?", confirmVoice: "Delete this voiceprint?",
    prev: "Previous", next: "Next", page: "page", name: "Name", enrol: "Enrol a voice",
    upload: "Enrol from a file", recordEnrol: "Enrol by speaking", identify: "Who is this?",
    identifyFile: "Identify a file", identifyMic: "Identify by speaking", play: "Play",
    speak: (s) => `Speak now… ${s} s left`, recorded: "Recorded.", noVoices: "No voiceprints yet.",
    live: "Listen live", stopLive: "Stop", listening: "Listening…", nobody: "nobody enrolled",
    same: "same person", maybe: "possibly", other: "someone else", noMatch: "Nobody in this group",
    speech: (s) => `${s} s of speech`, clean: "clean", noisy: "noisy: record again closer to the microphone",
    phone: "telephone quality", newName: "New name", quality: "Recording",
    whoSpokeWhen: "Who spoke when", diarizeFile: "Upload a recording", numSpeakers: "Speakers, if known",
    working: "Working out who spoke when…", overlap: "Overlap", noSpeech: "No speech found.",
    seconds: (s) => `${s} s`, thisGroup: "This group's voiceprints", clickToPlay: "Click a segment to play from there.",
    moreSpeech: (s) => `${s} s of speech in all, 6 s advised:`, addSample: "add a recording",
  },
  zh: {
    title: "声纹", signIn: "登录", token: "API 令牌", signOut: "退出", lang: "English",
    groups: "声纹组", search: "按名称搜索", newGroup: "新声纹组名称", create: "创建",
    rename: "重命名", delete: "删除", voiceprints: "个声纹", voiceprintList: "声纹", back: "全部声纹组",
    confirmGroup: "删除此声纹组及其中所有声纹？", confirmVoice: "删除此声纹？",
    prev: "上一页", next: "下一页", page: "页", name: "名称", enrol: "录入声纹",
    upload: "从文件录入", recordEnrol: "说话录入", identify: "这是谁？",
    identifyFile: "识别文件", identifyMic: "说话识别", play: "播放",
    speak: (s) => `请说话… 还剩 ${s} 秒`, recorded: "已录好。", noVoices: "还没有声纹。",
    live: "实时识别", stopLive: "停止", listening: "正在听…", nobody: "未录入的人",
    same: "同一人", maybe: "可能是", other: "不是此人", noMatch: "此组中无人匹配",
    speech: (s) => `${s} 秒语音`, clean: "清晰", noisy: "噪声太大：请靠近麦克风重录",
    phone: "电话音质", newName: "新名称", quality: "录音",
    whoSpokeWhen: "谁在什么时候说话", diarizeFile: "上传录音", numSpeakers: "说话人数（如已知）",
    working: "正在分析谁在什么时候说话…", overlap: "重叠", noSpeech: "没有找到语音。",
    seconds: (s) => `${s} 秒`, thisGroup: "本组声纹", clickToPlay: "点击片段，从那里开始播放。",
    moreSpeech: (s) => `共 ${s} 秒语音，建议 6 秒：`, addSample: "再添加一段录音",
  },
};
let lang = sessionStorage.getItem("lang") || (navigator.language.startsWith("zh") ? "zh" : "en");
const t = (key, ...args) => { const v = TEXT[lang][key]; return typeof v === "function" ? v(...args) : v; };
const view = document.getElementById("view");
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : String(c));
  return node;
};

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(method, path, body) {
  showError("");
  const headers = { Authorization: `Bearer ${sessionStorage.getItem("token")}` };
  if (body && !(body instanceof FormData)) { headers["Content-Type"] = "application/json"; body = JSON.stringify(body); }
  const response = await fetch(API + path, { method, headers, body });
  const answer = await response.json().catch(() => ({ code: -1, msg: `HTTP ${response.status}` }));
  if (answer.code !== 0) {
    showError(answer.msg);  // the API's own sentence, never a bare code
    if (answer.code === 4100) { sessionStorage.removeItem("token"); route(); }
    throw new Error(answer.msg);
  }
  return answer.data;
}

// --- audio -------------------------------------------------------------------------------

function wav(samples, rate) {
  const out = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, s) => [...s].forEach((c, i) => out.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); out.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVEfmt ");
  out.setUint32(16, 16, true); out.setUint16(20, 1, true); out.setUint16(22, 1, true);
  out.setUint32(24, rate, true); out.setUint32(28, rate * 2, true); out.setUint16(32, 2, true);
  out.setUint16(34, 16, true); text(36, "data"); out.setUint32(40, samples.length * 2, true);
  samples.forEach((v, i) => out.setInt16(44 + i * 2, Math.max(-1, Math.min(1, v)) * 32767, true));
  return new Blob([out], { type: "audio/wav" });
}

async function record(seconds, status, meter) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  processor.onaudioprocess = (e) => {
    const data = e.inputBuffer.getChannelData(0);
    chunks.push(new Float32Array(data));
    const rms = Math.sqrt(data.reduce((a, v) => a + v * v, 0) / data.length);
    meter.style.width = `${Math.min(100, rms * 400)}%`;
  };
  source.connect(processor);
  processor.connect(context.destination);
  for (let left = seconds; left > 0; left--) {
    status.textContent = t("speak", left);
    await new Promise((r) => setTimeout(r, 1000));
  }
  processor.disconnect(); source.disconnect();
  stream.getTracks().forEach((track) => track.stop());
  await context.close();
  status.textContent = t("recorded");
  meter.style.width = "0";
  const all = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0; for (const c of chunks) { all.set(c, at); at += c.length; }
  return wav(all, context.sampleRate);
}

function recorder(label, seconds, onAudio) {
  const status = el("span", { class: "muted" });
  const fill = el("div");
  const button = el("button", { type: "button", onclick: async () => {
    button.disabled = true;
    try { await onAudio(await record(seconds, status, fill)); } catch (e) { showError(e.message); }
    finally { button.disabled = false; }
  } }, label);
  return el("div", { class: "row" }, button, el("div", { class: "meter" }, fill), status);
}

function quality(sample) {
  const q = sample.quality || {};
  const words = [t("speech", sample.speech_seconds.toFixed(1))];
  words.push(q.snr_db !== null && q.snr_db !== undefined && q.snr_db < 15 ? t("noisy") : t("clean"));
  if (q.narrowband) words.push(t("phone"));
  return words.join(", ");
}

// --- timeline ----------------------------------------------------------------------------

// Where two or more lanes' segments cover the same time, as [start_ms, end_ms] pairs. A segment
// ending where another starts is no overlap: ends are counted before starts at the same time.
function overlaps(lanes) {
  const edges = lanes.flatMap((lane) => lane.segments.flatMap((s) => [[s.start_ms, 1, lane.key], [s.end_ms, -1, lane.key]]));
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const active = new Map();
  const out = [];
  let from = null;
  for (const [at, step, key] of edges) {
    const n = (active.get(key) || 0) + step;
    if (n) active.set(key, n); else active.delete(key);
    if (active.size >= 2 && from === null) from = at;
    if (active.size < 2 && from !== null) {
      const last = out[out.length - 1];
      if (last && last[1] === from) last[1] = at; else if (at > from) out.push([from, at]);
      from = null;
    }
  }
  return out;
}

function clock(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// One lane per speaker over [from, to] ms, an overlap lane, and a time axis. Each lane is
// {key, name, label, color?, segments: [{start_ms, end_ms, final}]}; onSegment(segment) makes
// segments clickable (and reachable by keyboard).
function timeline(lanes, from, to, onSegment) {
  const span = Math.max(1, to - from);
  const place = (a, b) => {
    const left = Math.max(a, from), right = Math.min(b, to);
    return `left:${((left - from) / span) * 100}%;width:${(Math.max(0, right - left) / span) * 100}%`;
  };
  const shown = (s) => s.end_ms > from && s.start_ms < to;
  const row = (cls, attrs, label, items) =>
    el("div", { class: `lane ${cls}`, ...attrs }, el("div", { class: "label" }, label), el("div", { class: "track" }, items));
  const segment = (s, cls, title) => el("div", {
    class: `segment ${cls}`, style: place(s.start_ms, s.end_ms), title,
    "data-start-ms": s.start_ms, "data-end-ms": s.end_ms,
    ...(onSegment && { role: "button", tabindex: 0, onclick: () => onSegment(s),
      onkeydown: (e) => { if (e.key === "Enter") onSegment(s); } }),
  });
  const both = overlaps(lanes).filter(([a, b]) => shown({ start_ms: a, end_ms: b }));
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((x) => span / (x * 1000) <= 10) || 1200;
  const ticks = [];
  for (let at = Math.ceil(from / (step * 1000)) * step * 1000; at <= to; at += step * 1000) ticks.push(at);
  return el("div", { class: "timeline" },
    lanes.map((lane, i) => row("speaker", { "data-speaker": lane.key, "data-name": lane.name }, lane.label,
      lane.segments.filter(shown).map((s) => segment(s, `c${(lane.color ?? i) % 8}${s.final === false ? " interim" : ""}`,
        `${clock(s.start_ms)}–${clock(s.end_ms)}`)))),
    row("overlap", {}, t("overlap"), both.map(([a, b]) => segment({ start_ms: a, end_ms: b }, "", t("overlap")))),
    row("axis", {}, "", ticks.map((at) => el("span", { class: "tick", style: `left:${((at - from) / span) * 100}%` }, clock(at)))),
    // Bands across every lane where speakers overlap, and the playhead; clicks pass through.
    el("div", { class: "over" }, both.map(([a, b]) => el("div", { class: "band", style: place(a, b) })),
      el("div", { class: "playhead", hidden: "" })));
}

const LIVE_SPAN = 30000;  // the live timeline rolls over the last 30 s of the stream

// Who was speaking, from the stream's segment events, one lane per name. Interims (a turn's last
// 3 s, each second) are drawn faintly, each from where the one before ended; a final settles its
// part of the turn and takes the place of the interims there.
function liveTimeline(holder) {
  const segments = [];
  const colors = new Map();  // a person keeps their colour while others' lanes roll away
  let now = 0;
  const draw = () => {
    const lanes = [];
    for (const s of segments) {
      if (!colors.has(s.name)) colors.set(s.name, colors.size);
      let lane = lanes.find((l) => l.key === s.name);
      if (!lane) lanes.push(lane = { key: s.name, name: s.name, label: s.name || t("nobody"), color: colors.get(s.name), segments: [] });
      lane.segments.push(s);
    }
    holder.replaceChildren(timeline(lanes, Math.max(0, now - LIVE_SPAN), Math.max(LIVE_SPAN, now)));
  };
  const keep = (test) => { for (let i = segments.length - 1; i >= 0; i--) if (!test(segments[i])) segments.splice(i, 1); };
  return {
    clear() { segments.length = 0; colors.clear(); now = 0; draw(); },
    heard(ms) { now = ms; keep((s) => s.end_ms >= now - LIVE_SPAN); draw(); },
    stopped(ms) {  // a turn's interims end where its speech did
      keep((s) => s.final || s.start_ms < ms);
      segments.forEach((s) => { if (!s.final) s.end_ms = Math.min(s.end_ms, ms); });
    },
    add(data) {
      const best = data.feature_score_list[0];
      const name = data.match ? best.feature_name : "";
      if (data.final) {
        keep((s) => s.final || s.start_ms >= data.end_ms || s.end_ms > data.end_ms);
        segments.forEach((s) => { if (!s.final) s.start_ms = Math.max(s.start_ms, data.end_ms); });
        segments.push({ start_ms: data.start_ms, end_ms: data.end_ms, name, final: true });
      } else {
        const start = Math.max(data.start_ms, ...segments.map((s) => s.end_ms));
        if (start < data.end_ms) segments.push({ start_ms: start, end_ms: data.end_ms, name, final: false });
      }
      draw();
    },
  };
}

// The live stream: microphone PCM to the WebSocket, each turn's answer as it comes.
function liveIdentify(groupId) {
  let stop = null;
  const status = el("span", { class: "muted" });
  const out = el("div", { id: "live-answer" });
  const lanes = el("div", { id: "live-timeline" });
  const rolling = liveTimeline(lanes);
  const button = el("button", { type: "button", id: "live", onclick: async () => {
    if (stop) { stop(); return; }
    const token = encodeURIComponent(`Bearer ${sessionStorage.getItem("token")}`);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const context = new AudioContext();
    // Opened only now: its handlers must be in place before it can open.
    const ws = new WebSocket(`${scheme}://${location.host}${API}/${groupId}/speaker_identify/stream?authorization=${token}`);
    const source = context.createMediaStreamSource(stream);
    const processor = context.createScriptProcessor(4096, 1, 1);
    let sent = 0;  // samples sent: the stream's clock, which the server's offsets count in
    rolling.clear();
    ws.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.event_type === "error") showError(event.data.msg);
      if (event.event_type === "input_audio_buffer.speech_stopped") rolling.stopped(event.data.offset_ms);
      if (event.event_type !== "speaker_identify.segment") return;
      rolling.add(event.data);
      const best = event.data.feature_score_list[0];
      const who = event.data.match ? best.feature_name : t("nobody");
      out.replaceChildren(el("div", { class: "row live", "data-name": event.data.match ? best.feature_name : "" },
        el("strong", {}, who), best ? `${best.score.toFixed(1)}` : "",
        el("span", { class: "muted" }, event.data.final ? "" : "…")));
    };
    ws.onopen = () => {
      ws.send(JSON.stringify({ event_type: "speaker_identify.update", data: { input_audio: {
        format: "pcm", codec: "pcm", sample_rate: context.sampleRate, channel: 1 } } }));
      processor.onaudioprocess = (e) => {
        const data = e.inputBuffer.getChannelData(0);
        const pcm = new Int16Array(data.length);
        data.forEach((v, i) => { pcm[i] = Math.max(-1, Math.min(1, v)) * 32767; });
        let text = ""; new Uint8Array(pcm.buffer).forEach((b) => { text += String.fromCharCode(b); });
        if (ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ event_type: "input_audio_buffer.append", data: { delta: btoa(text) } }));
          sent += data.length;
          rolling.heard((sent / context.sampleRate) * 1000);
        }
      };
      source.connect(processor); processor.connect(context.destination);
      status.textContent = t("listening"); button.textContent = t("stopLive");
    };
    stop = () => {
      processor.disconnect(); source.disconnect(); stream.getTracks().forEach((tr) => tr.stop());
      context.close(); ws.close(); stop = null; status.textContent = ""; button.textContent = t("live");
    };
  } }, t("live"));
  return el("div", {}, el("div", { class: "row" }, button, status), out, lanes);
}

// --- views -------------------------------------------------------------------------------

// Each view takes a ticket before it fetches and shows itself only if no later view has taken
// one since: a slow answer for a page already left must not replace the page now shown.
let tickets = 0;
const show = (ticket, ...nodes) => { if (ticket === tickets) view.replaceChildren(...nodes); };

function signIn() {
  const ticket = ++tickets;
  if (diarized) { URL.revokeObjectURL(diarized.url); diarized = null; }  // not for the next person
  const input = el("input", { id: "token", type: "password", placeholder: t("token"), size: 48 });
  const form = el("form", { onsubmit: async (e) => {
    e.preventDefault();
    sessionStorage.setItem("token", input.value.trim());
    // Only one route() per sign-in: a second render racing the first would replace a form
    // the user has already started filling in.
    try { await api("GET", "?page_size=1"); if (location.hash === "#/groups") route(); else location.hash = "#/groups"; }
    catch { sessionStorage.removeItem("token"); }
  } }, el("div", { class: "row" }, input, el("button", { class: "primary", type: "submit" }, t("signIn"))));
  show(ticket, el("section", {}, el("h2", {}, t("signIn")), form));
}

async function groups(page = 1, search = "") {
  const ticket = ++tickets;
  const query = `?page_num=${page}&page_size=10` + (search ? `&name=${encodeURIComponent(search)}` : "");
  const data = await api("GET", query);
  const find = el("input", { id: "search", placeholder: t("search"), value: search });
  find.addEventListener("change", () => groups(1, find.value));
  const name = el("input", { id: "new-group", placeholder: t("newGroup"), maxlength: 20 });
  const create = el("button", { class: "primary", id: "create-group", type: "button", onclick: async () => {
    await api("POST", "", { name: name.value }); groups(1, search);
  } }, t("create"));
  const rows = data.items.map((g) => el("tr", { "data-group": g.name },
    el("td", {}, el("a", { onclick: () => { location.hash = `#/group/${g.id}`; } }, g.name)),
    el("td", { class: "muted" }, `${g.feature_count} ${t("voiceprints")}`),
    el("td", {},
      el("button", { type: "button", onclick: async () => {
        const to = prompt(t("newName"), g.name); if (to) { await api("PUT", `/${g.id}`, { name: to }); groups(page, search); }
      } }, t("rename")), " ",
      el("button", { class: "danger", type: "button", onclick: async () => {
        if (confirm(t("confirmGroup"))) { await api("DELETE", `/${g.id}`); groups(1, search); }
      } }, t("delete")))));
  const pages = Math.max(1, Math.ceil(data.total / 10));
  show(ticket, el("section", {}, el("h2", {}, t("groups")),
    el("div", { class: "row" }, find, name, create),
    el("table", { id: "groups" }, rows),
    el("div", { class: "row muted" },
      el("button", { type: "button", onclick: () => page > 1 && groups(page - 1, search) }, t("prev")),
      `${page} / ${pages} ${t("page")}`,
      el("button", { type: "button", onclick: () => page < pages && groups(page + 1, search) }, t("next")))));
}

async function group(id) {
  const ticket = ++tickets;
  const data = await api("GET", `/${id}/features?page_size=50`);
  const name = el("input", { id: "voice-name", placeholder: t("name"), maxlength: 20 });
  const enrolWith = async (blob) => {
    const form = new FormData(); form.append("name", name.value); form.append("file", blob, "voice.wav");
    await api("POST", `/${id}/features`, form); group(id);
  };
  const file = el("input", { id: "enrol-file", type: "file", accept: "audio/*" });
  file.addEventListener("change", () => file.files[0] && enrolWith(file.files[0]));
  const results = el("div", { id: "results" });
  const identifyWith = async (blob) => {
    const form = new FormData(); form.append("file", blob, "probe.wav"); form.append("top_k", "5");
    const answer = await api("POST", `/${id}/speaker_identify`, form);
    results.replaceChildren(...answer.feature_score_list.map((m) => {
      const kind = m.score >= 50 ? "same" : m.score >= 30 ? "maybe" : "other";
      return el("div", { class: "row result", "data-name": m.feature_name },
        el("strong", {}, m.feature_name), el("span", { class: "bar" }, el("div", { class: kind, style: `width:${m.score}%` })),
        `${m.score.toFixed(1)}`, el("span", { class: "muted" }, t(kind)));
    }));
    if (!answer.feature_score_list.some((m) => m.score >= 50)) results.append(el("p", { class: "muted" }, t("noMatch")));
  };
  const probe = el("input", { id: "identify-file", type: "file", accept: "audio/*" });
  probe.addEventListener("change", () => probe.files[0] && identifyWith(probe.files[0]));
  const player = el("audio", { controls: "" });
  // A voiceprint short of the advised speech says so, with a way to add a recording to it.
  const advice = (f) => {
    if (f.enough_speech) return [];
    const more = el("input", { class: "add-sample", type: "file", accept: "audio/*" });
    more.addEventListener("change", async () => {
      if (!more.files[0]) return;
      const form = new FormData(); form.append("file", more.files[0], "voice.wav");
      await api("POST", `/${id}/features/${f.id}/samples`, form); group(id);
    });
    return [el("div", { class: "advice" }, t("moreSpeech", f.speech_seconds.toFixed(1)), " ",
      el("label", {}, t("addSample"), " ", more))];
  };
  const rows = data.items.map((f) => el("tr", { "data-voice": f.name, "data-samples": f.samples.length },
    el("td", {}, f.name), el("td", { class: "muted" }, f.samples.map(quality).join(" · "), advice(f)),
    el("td", {},
      el("button", { type: "button", onclick: async () => {
        const r = await fetch(f.audio_url); player.src = URL.createObjectURL(await r.blob()); player.play();
      } }, t("play")), " ",
      el("button", { type: "button", onclick: async () => {
        const to = prompt(t("newName"), f.name);
        if (to) { const form = new FormData(); form.append("name", to); await api("PUT", `/${id}/features/${f.id}`, form); group(id); }
      } }, t("rename")), " ",
      el("button", { class: "danger", type: "button", onclick: async () => {
        if (confirm(t("confirmVoice"))) { await api("DELETE", `/${id}/features/${f.id}`); group(id); }
      } }, t("delete")))));
  show(ticket,
    el("p", {}, el("a", { onclick: () => { location.hash = "#/groups"; } }, `← ${t("back")}`), " · ",
      el("a", { id: "to-diarize", onclick: () => { location.hash = `#/group/${id}/diarize`; } }, `${t("whoSpokeWhen")} →`)),
    el("section", {}, el("h2", {}, t("voiceprintList")),
      data.items.length ? el("table", { id: "voiceprints" }, rows) : el("p", { class: "muted" }, t("noVoices")), player),
    el("section", {}, el("h2", {}, t("enrol")), el("div", { class: "row" }, name),
      el("div", { class: "row" }, el("label", {}, t("upload"), " ", file)),
      recorder(t("recordEnrol"), 6, enrolWith)),
    el("section", {}, el("h2", {}, t("identify")),
      el("div", { class: "row" }, el("label", {}, t("identifyFile"), " ", probe)),
      recorder(t("identifyMic"), 4, identifyWith), results,
      liveIdentify(id)));
}

// Who spoke when: a recording through speaker_diarize, one lane per speaker, named from the group.
// The last recording and its answer stay for when the page is drawn again (another language, back
// from the group), until the next upload or sign-out.
let diarized = null;  // {group, url, answer}

async function diarize(id) {
  const ticket = ++tickets;
  const count = el("input", { id: "num-speakers", type: "number", min: 1, max: 64, placeholder: t("numSpeakers") });
  const file = el("input", { id: "diarize-file", type: "file", accept: "audio/*" });
  const status = el("span", { class: "muted" });
  const result = el("div", { id: "timeline" });
  const player = el("audio", { id: "diarize-audio", controls: "" });
  const draw = (answer) => {
    if (!answer.speakers.length) { result.replaceChildren(el("p", { class: "muted" }, t("noSpeech"))); return; }
    const lanes = answer.speakers.map((s) => ({
      key: s.speaker, name: s.match ? s.feature_name : "",
      label: el("span", {}, el("strong", {}, s.match ? s.feature_name : s.speaker), " ",
        el("span", { class: "muted" }, (s.match ? `${s.speaker} · ` : "") + t("seconds", (s.speech_ms / 1000).toFixed(1)))),
      segments: answer.segments.filter((g) => g.speaker === s.speaker),
    }));
    const drawn = timeline(lanes, 0, answer.duration_ms, (s) => { player.currentTime = s.start_ms / 1000; player.play(); });
    const head = drawn.querySelector(".playhead");
    player.ontimeupdate = () => {
      head.hidden = false;
      head.style.left = `${Math.min(100, (player.currentTime * 100000) / answer.duration_ms)}%`;
    };
    result.replaceChildren(drawn, el("p", { class: "muted" }, t("clickToPlay")));
  };
  file.addEventListener("change", async () => {
    const upload = file.files[0];
    if (!upload) return;
    const form = new FormData(); form.append("file", upload);
    if (count.value) form.append("num_speakers", count.value);
    if (diarized) URL.revokeObjectURL(diarized.url);
    diarized = { group: id, url: URL.createObjectURL(upload), answer: null };  // played from the file, not fetched back
    const mine = diarized;
    player.src = mine.url;
    result.replaceChildren(); status.textContent = t("working");
    try { mine.answer = await api("POST", `/${id}/speaker_diarize`, form); if (diarized === mine) draw(mine.answer); }
    finally { status.textContent = ""; }
  });
  if (diarized && diarized.group === id) {
    player.src = diarized.url;
    if (diarized.answer) draw(diarized.answer);
  }
  show(ticket,
    el("p", {}, el("a", { onclick: () => { location.hash = `#/group/${id}`; } }, `← ${t("thisGroup")}`)),
    el("section", {}, el("h2", {}, t("whoSpokeWhen")),
      el("div", { class: "row" }, el("label", {}, t("diarizeFile"), " ", file), count, status),
      result, player));
}

function route() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = t(node.dataset.t); });
  document.getElementById("lang").textContent = t("lang");
  const signedIn = Boolean(sessionStorage.getItem("token"));
  document.getElementById("signout").hidden = !signedIn;
  if (!signedIn) return signIn();
  const match = location.hash.match(/^#\/group\/(\d+)(\/diarize)?$/);
  (match ? (match[2] ? diarize(match[1]) : group(match[1])) : groups()).catch(() => {});
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "en" ? "zh" : "en"; sessionStorage.setItem("lang", lang); route();
});
document.getElementById("signout").addEventListener("click", () => { sessionStorage.removeItem("token"); route(); });
window.addEventListener("hashchange", route);
route();
