// hum2band serve: record or drop a take, send it to the server, follow its progress, then play
// the band with mute/solo per stem. Plain ES module, no build step.
//
// State the end-to-end test reads is kept on window.hum2band:
//   take      {blob, name, tempoBpm, firstDownbeatS} of the take to send
//   job       the last status the server sent
//   waited    seconds from "Make my band" to the result, as the user waited them in all
//   player    {ctx, mixBuffer, stems: [{name, file, url, buffer, gain, muted, soloed}], ...}
//   again     {tempoBpm, downbeatS} for arranging the same take again (bar 1 moved, tempo tapped)

const $ = (id) => document.getElementById(id);
const state = { config: null, take: null, job: null, player: null, waited: null, again: null };
window.hum2band = state;

const DEFAULT_COUNT_IN_BPM = 90;

// ---- small helpers ---------------------------------------------------------------------------
function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function fmtTime(seconds) {
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}

function audioContext() {
  if (!state.ctx) {
    state.ctx = new (window.AudioContext || window.webkitAudioContext)();
  }
  if (state.ctx.state === "suspended") state.ctx.resume();
  return state.ctx;
}

function beatsPerBar() {
  const meter = $("meter").value;
  if (!meter) return 4;
  const [n, d] = meter.split("/").map(Number);
  return d === 8 && n % 3 === 0 ? n / 3 : n; // 6/8 counts two beats, 9/8 three, 12/8 four
}

function countInBpm() {
  const bpm = Number($("tempo").value);
  return bpm >= 30 && bpm <= 300 ? bpm : DEFAULT_COUNT_IN_BPM;
}

// ---- config ----------------------------------------------------------------------------------
async function loadConfig() {
  const response = await fetch("/api/config");
  const config = await response.json();
  state.config = config;
  const style = $("style");
  for (const name of config.styles) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    option.title = (config.style_info[name] || {}).description || "";
    option.selected = name === config.default_style;
    style.append(option);
  }
  for (const meter of config.meters) {
    const option = document.createElement("option");
    option.value = meter;
    option.textContent = meter;
    $("meter").append(option);
  }
  style.addEventListener("change", describeStyle);
  describeStyle();
  $("limits").textContent = `Up to ${(config.max_upload_bytes / 1e6).toFixed(0)} MB and ` +
    `${(config.max_duration_s / 60).toFixed(0)} minutes.`;
}

// The chosen style's sound and meters; meters it cannot play are disabled.
function describeStyle() {
  const info = state.config.style_info[$("style").value];
  $("style-info").textContent = info
    ? `${info.description} (plays ${info.meters.join(", ")})` : "";
  for (const option of $("meter").options) {
    option.disabled = Boolean(info && option.value && !info.meters.includes(option.value));
  }
  if ($("meter").selectedOptions[0] && $("meter").selectedOptions[0].disabled) $("meter").value = "";
  if (state.job && state.job.state === "done") showCounts(state.job.other_tempi || []); // its meters
}

// ---- taking a take ---------------------------------------------------------------------------
function setTake(take) {
  state.take = take;
  const ready = $("take-ready");
  ready.hidden = !take;
  $("submit").disabled = !take;
  if (!take) return;
  const preview = $("take-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.removeAttribute("src");
  preview.hidden = take.playable === false;
  if (take.playable !== false) preview.src = URL.createObjectURL(take.blob);
  const kb = (take.blob.size / 1024).toFixed(0);
  let info = `${take.name} (${kb} KB)`;
  if (take.durationS) info += `, ${take.durationS.toFixed(1)} s`;
  if (take.tempoBpm) info += `; counted in at ${take.tempoBpm} bpm`;
  if (take.playable === false) {
    info += ": this browser cannot play it, so there is no preview; the server decides " +
      "whether it is audio it can read when you send it";
  }
  $("take-info").textContent = info;
}

// True when the first bytes are all printable text (a text file renamed .m4a, say).
function looksLikeText(bytes) {
  if (!bytes.length) return false;
  for (const b of bytes) {
    if (!(b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127))) return false;
  }
  return true;
}

// Check in the page what the browser can decode, before anything is sent: an empty or text
// file is refused at once; a file this browser cannot decode (AMR, say) may still be audio the
// server reads, so it is kept, without the dead preview player, and the page says so.
async function chooseFile(file) {
  if (!file) return;
  showError("");
  const limit = state.config ? state.config.max_upload_bytes : Infinity;
  if (file.size > limit) {
    showError(`${file.name} is larger than this server's ${(limit / 1e6).toFixed(0)} MB limit: ` +
      "trim the take or export it compressed (m4a, mp3, ogg)");
    return;
  }
  if (file.size === 0) {
    setTake(null);
    showError(`${file.name} is empty (0 bytes): choose a recording`);
    return;
  }
  const head = new Uint8Array(await file.slice(0, 512).arrayBuffer());
  if (looksLikeText(head)) {
    setTake(null);
    showError(`${file.name} is a text file, not a recording: choose an audio file`);
    return;
  }
  let durationS;
  let playable = false;
  if (file.size <= 60e6) {
    try {
      const buffer = await audioContext().decodeAudioData(await file.arrayBuffer());
      durationS = buffer.duration;
      playable = true;
    } catch (error) {
      playable = false;
    }
  }
  setTake({ blob: file, name: file.name, durationS, playable });
}

function setUpDropZone() {
  const zone = $("drop-zone");
  $("file").addEventListener("change", (event) => chooseFile(event.target.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    chooseFile(event.dataTransfer.files[0]);
  });
}

// A click: a short sine blip with a fast decay; the first beat of a bar is higher.
function scheduleClick(ctx, when, accent) {
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.frequency.value = accent ? 1760 : 1175;
  gain.gain.setValueAtTime(0.0001, when);
  gain.gain.exponentialRampToValueAtTime(accent ? 0.6 : 0.35, when + 0.002);
  gain.gain.exponentialRampToValueAtTime(0.0001, when + 0.06);
  osc.connect(gain).connect(ctx.destination);
  osc.start(when);
  osc.stop(when + 0.08);
}

const recorder = { media: null, stream: null, chunks: [], timers: [], clickTimer: null,
  levelTimer: null, startCtxS: 0, downbeatCtxS: null, bpm: null, startedMs: 0 };

function pickMimeType() {
  const kinds = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
  return kinds.find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t)) || "";
}

async function startRecording() {
  showError("");
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    showError("this browser cannot record here: use a voice memo file instead");
    return;
  }
  const ctx = audioContext();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (error) {
    showError(`no microphone (${error.name}): allow microphone access for this page, or use ` +
      "a voice memo file");
    return;
  }
  const mimeType = pickMimeType();
  const media = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
  Object.assign(recorder, { media, stream, chunks: [], timers: [], downbeatCtxS: null });
  media.addEventListener("dataavailable", (event) => {
    if (event.data && event.data.size) recorder.chunks.push(event.data);
  });
  media.addEventListener("stop", finishRecording);
  watchLevel(ctx, stream);
  $("record").disabled = true;
  $("stop").disabled = false;
  $("submit").disabled = true;
  const started = new Promise((resolve) => media.addEventListener("start", resolve, { once: true }));
  media.start(250);
  await started;
  recorder.startCtxS = ctx.currentTime;
  recorder.startedMs = performance.now();
  recorder.bpm = countInBpm();
  const beatS = 60 / recorder.bpm;
  const n = beatsPerBar();
  const first = ctx.currentTime + 0.15;
  const countIn = $("countin").checked;
  const click = $("click").checked;
  if (countIn) {
    for (let i = 0; i < n; i++) {
      scheduleClick(ctx, first + i * beatS, i === 0);
      const shownAt = (first + i * beatS - ctx.currentTime) * 1000;
      recorder.timers.push(setTimeout(() => { $("countdown").textContent = String(n - i); }, shownAt));
    }
    recorder.downbeatCtxS = first + n * beatS;
    recorder.timers.push(setTimeout(() => { $("countdown").textContent = "sing!"; },
      (recorder.downbeatCtxS - ctx.currentTime) * 1000));
  } else {
    $("countdown").textContent = "sing!";
  }
  if (click) {
    // Look-ahead scheduler: keep the next 0.2 s of clicks queued on the audio clock.
    let beat = countIn ? n : 0;
    recorder.clickTimer = setInterval(() => {
      while (first + beat * beatS < ctx.currentTime + 0.2) {
        scheduleClick(ctx, first + beat * beatS, beat % n === 0);
        beat += 1;
      }
    }, 50);
  }
  const limitS = state.config ? state.config.max_duration_s : 600;
  recorder.timers.push(setInterval(() => {
    const s = (performance.now() - recorder.startedMs) / 1000;
    $("rec-time").textContent = fmtTime(s);
    if (s >= limitS - 1) stopRecording();
  }, 200));
}

function watchLevel(ctx, stream) {
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  recorder.levelTimer = setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    $("level").value = peak;
  }, 80);
  recorder.levelSource = source;
}

function stopRecording() {
  if (!recorder.media || recorder.media.state === "inactive") return;
  recorder.media.stop();
}

function finishRecording() {
  const ctx = audioContext();
  for (const t of recorder.timers) { clearTimeout(t); clearInterval(t); }
  clearInterval(recorder.clickTimer);
  clearInterval(recorder.levelTimer);
  recorder.levelSource.disconnect();
  for (const track of recorder.stream.getTracks()) track.stop();
  $("countdown").textContent = "";
  $("level").value = 0;
  $("record").disabled = false;
  $("stop").disabled = true;
  const type = recorder.media.mimeType || "audio/webm";
  const blob = new Blob(recorder.chunks, { type });
  const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
  const take = { blob, name: `recording.${ext}`,
    durationS: (performance.now() - recorder.startedMs) / 1000 };
  if (recorder.downbeatCtxS !== null && $("follow-countin").checked) {
    // The singer hears the clicks after the output latency and sings into the recording.
    const latencyS = ctx.outputLatency || ctx.baseLatency || 0;
    take.tempoBpm = recorder.bpm;
    take.firstDownbeatS = Math.max(0, recorder.downbeatCtxS - recorder.startCtxS + latencyS);
  }
  setTake(take);
}

// ---- sending and following a job -------------------------------------------------------------
function jobQuery() {
  const params = new URLSearchParams();
  params.set("filename", state.take.name);
  params.set("style", $("style").value);
  const tempo = $("tempo").value.trim();
  if (state.take.tempoBpm) params.set("tempo_bpm", String(state.take.tempoBpm));
  else if (tempo) params.set("tempo_bpm", tempo);
  if (state.take.firstDownbeatS !== undefined) {
    params.set("first_downbeat_s", state.take.firstDownbeatS.toFixed(3));
  }
  if ($("meter").value) params.set("meter", $("meter").value);
  if ($("key").value.trim()) params.set("key", $("key").value.trim());
  if ($("seed").value.trim()) params.set("seed", $("seed").value.trim());
  return params.toString();
}

// Send a request that makes a job; while the server's line is full (503), wait in line in the
// page and send it again by itself after the Retry-After it gives. Returns the 202 body, or
// null when it failed (the error is shown) or the user stopped waiting.
async function sendInLine(makeRequest) {
  const ticket = {};
  state.waiting = ticket;
  $("cancel-wait").hidden = true;
  for (let tries = 0; ; tries++) {
    let response;
    try {
      response = await makeRequest();
    } catch (error) {
      failJob(`the upload did not reach the server (${error.message}): is hum2band serve running?`);
      return null;
    }
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      $("cancel-wait").hidden = true;
      return body;
    }
    if (response.status !== 503) {
      failJob(body.error || `the server refused the take (HTTP ${response.status})`);
      return null;
    }
    const waitS = Math.min(Math.max(Number(response.headers.get("retry-after")) || 5, 2), 30);
    $("cancel-wait").hidden = false;
    for (let left = waitS; left > 0; left--) {
      if (state.waiting !== ticket) return null;
      $("stage").textContent = `in line: the band is busy with other takes; yours is sent ` +
        `by itself in ${left} s (waiting ${fmtWait()})`;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    if (state.waiting !== ticket) return null;
    $("stage").textContent = "sending…";
  }
}

function fmtWait() {
  return `${((performance.now() - state.submittedMs) / 1000).toFixed(0)} s`;
}

function startProgress(label) {
  showError("");
  stopPlayback();
  state.submittedMs = performance.now();
  state.player = null; // the old result is gone from the page until the new one is in
  $("result-section").hidden = true;
  $("submit").disabled = true;
  $("progress-section").hidden = false;
  $("progress").value = 0;
  $("stage").textContent = label;
}

async function submitTake() {
  if (!state.take) return;
  startProgress("uploading…");
  const query = jobQuery();
  const body = await sendInLine(() => fetch(`/api/jobs?${query}`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: state.take.blob,
  }));
  if (body) pollJob(body.status_url);
}

function failJob(message) {
  showError(message);
  state.waiting = null;
  $("cancel-wait").hidden = true;
  $("progress-section").hidden = true;
  $("submit").disabled = !state.take;
}

// What the arranger's stages (hum2band.pipeline.STAGES) mean to a musician.
const STAGE_LABELS = {
  transcribe: "listening to your take",
  chords: "finding the chords",
  parts: "writing the band's parts",
  arrange: "fitting the band to your timing",
  render: "the band is playing",
  export: "writing the files",
  starting: "starting",
};

async function pollJob(url) {
  for (;;) {
    let status;
    try {
      const response = await fetch(url, { cache: "no-store" });
      status = await response.json();
      if (!response.ok) {
        failJob(status.error || `lost the take (HTTP ${response.status})`);
        return;
      }
    } catch (error) {
      failJob(`lost contact with the server (${error.message}): is hum2band serve running?`);
      return;
    }
    state.job = status;
    if (status.state === "failed") {
      failJob(status.error);
      return;
    }
    if (status.state === "done") {
      // how long the user waited in all: from the click, through the upload and the line
      state.waited = (performance.now() - state.submittedMs) / 1000;
      $("progress").value = 1;
      $("stage").textContent = `done in ${state.waited.toFixed(0)} s`;
      $("submit").disabled = false;
      await showResult(status);
      return;
    }
    $("progress").value = status.fraction || 0;
    $("stage").textContent = status.state === "queued" && status.queue_position > 0
      ? `in line: ${status.queue_position} take(s) ahead of yours; yours starts by itself ` +
        `(waiting ${fmtWait()})`
      : `${STAGE_LABELS[status.stage] || status.stage || status.state}…`;
    await new Promise((resolve) => setTimeout(resolve, 600));
  }
}

// ---- the result ------------------------------------------------------------------------------
const DOWNLOAD_LABELS = {
  "mix.wav": "The mix (WAV)",
  "stems.zip": "All stems (ZIP of WAVs)",
  "arrangement.mid": "Arrangement (MIDI)",
  "leadsheet.musicxml": "Lead sheet (MusicXML)",
  "pianoroll.png": "Piano roll (PNG)",
  "arrangement.json": "Arrangement data (JSON)",
};

async function showResult(status) {
  $("result-section").hidden = false;
  const bits = [];
  if (status.tempo_bpm) bits.push(`${Number(status.tempo_bpm).toFixed(0)} bpm`);
  if (status.meter) bits.push(Array.isArray(status.meter) ? status.meter.join("/") : status.meter);
  if (status.key) bits.push(typeof status.key === "string" ? status.key : JSON.stringify(status.key));
  if (status.style) bits.push(status.style);
  $("summary").textContent = bits.join(" · ");
  state.again = { tempoBpm: Number(status.tempo_bpm) || null,
    downbeatS: Number(status.first_downbeat_s) || 0, taps: [],
    meter: typeof status.meter === "string" ? status.meter : null };
  $("again-tempo").value = state.again.tempoBpm ? state.again.tempoBpm.toFixed(1) : "";
  describeAgain();
  showReadings(status.other_readings || []);
  showCounts(status.other_tempi || []);

  const chords = $("chords");
  chords.replaceChildren();
  for (const chord of status.chords) {
    const item = document.createElement("li");
    item.textContent = chord.label;
    const when = document.createElement("small");
    when.textContent = fmtTime(chord.start);
    item.append(when);
    item.dataset.start = chord.start;
    item.dataset.end = chord.end;
    item.title = "play from here";
    item.addEventListener("click", () => startPlayback(Number(chord.start)));
    chords.append(item);
  }

  const image = $("pianoroll");
  image.hidden = !status.files["pianoroll.png"];
  if (status.files["pianoroll.png"]) image.src = status.files["pianoroll.png"];

  const list = $("downloads");
  list.replaceChildren();
  for (const [name, url] of Object.entries(status.files)) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = url;
    link.download = "";
    link.className = "download";
    link.dataset.name = name;
    link.textContent = DOWNLOAD_LABELS[name] || name;
    item.append(link);
    list.append(item);
  }
  await loadPlayer(status);
}

const MAX_MIXER_S = 330;

async function decodeUrl(ctx, url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  return ctx.decodeAudioData(await response.arrayBuffer());
}

// Loudness of a buffer (mean square over every 16th sample of every channel).
function meanSquare(buffers) {
  const length = Math.max(...buffers.map((b) => b.length));
  const channels = Math.max(...buffers.map((b) => b.numberOfChannels));
  let total = 0;
  let count = 0;
  for (let c = 0; c < channels; c++) {
    const data = buffers.map((b) => b.getChannelData(Math.min(c, b.numberOfChannels - 1)));
    for (let i = 0; i < length; i += 16) {
      let v = 0;
      for (const d of data) if (i < d.length) v += d[i];
      total += v * v;
      count += 1;
    }
  }
  return count ? total / count : 0;
}

async function loadPlayer(status) {
  const ctx = audioContext();
  const mixer = $("mixer").querySelector("tbody");
  mixer.replaceChildren();
  $("player-state").textContent = "loading the band…";
  $("play").disabled = true;
  const player = { ctx, mixBuffer: null, stems: [], sources: [], playing: false,
    startedAt: 0, offsetS: 0, durationS: 0, stemScale: 1, ready: false };
  state.player = player;
  // Every stem is decoded into memory (about 23 MB per stereo minute each); past
  // MAX_MIXER_S only the mix is played and the stems are offered as downloads.
  const stemsToLoad = (status.duration_s || 0) > MAX_MIXER_S ? [] : status.stems;
  try {
    const [mixBuffer, ...stemBuffers] = await Promise.all([
      decodeUrl(ctx, status.files["mix.wav"]),
      ...stemsToLoad.map((stem) => decodeUrl(ctx, stem.url)),
    ]);
    player.mixBuffer = mixBuffer;
    player.stems = stemsToLoad.map((stem, i) => ({ ...stem, buffer: stemBuffers[i],
      gain: null, muted: false, soloed: false }));
  } catch (error) {
    $("player-state").textContent = `cannot play in the page (${error.message}); download the mix`;
    return;
  }
  if (state.player !== player) return; // a newer result replaced this one meanwhile
  player.durationS = player.mixBuffer.duration;
  // The mix is mastered (levelled); scale the stems so muting one does not jump in loudness.
  const stemPower = player.stems.length ? meanSquare(player.stems.map((s) => s.buffer)) : 0;
  player.stemScale = stemPower > 0 ? Math.sqrt(meanSquare([player.mixBuffer]) / stemPower) : 1;
  for (const stem of player.stems) {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = stem.name;
    const mute = document.createElement("button");
    mute.textContent = "M";
    mute.title = `mute ${stem.name}`;
    mute.className = "mute";
    mute.addEventListener("click", () => {
      stem.muted = !stem.muted;
      mute.classList.toggle("on", stem.muted);
      applyGains();
    });
    const solo = document.createElement("button");
    solo.textContent = "S";
    solo.title = `solo ${stem.name}`;
    solo.className = "solo";
    solo.addEventListener("click", () => {
      stem.soloed = !stem.soloed;
      solo.classList.toggle("on", stem.soloed);
      applyGains();
    });
    const link = document.createElement("a");
    link.href = stem.url;
    link.download = "";
    link.textContent = stem.file;
    link.className = "stem-download";
    const cells = [name, mute, solo, link].map((node) => {
      const cell = document.createElement("td");
      cell.append(node);
      return cell;
    });
    row.append(...cells);
    row.dataset.stem = stem.name;
    mixer.append(row);
  }
  player.ready = true;
  $("play").disabled = false;
  $("player-state").textContent = stemsToLoad.length ? `${player.stems.length} stems, ` +
    fmtTime(player.durationS) : `mute/solo is off for takes over ${MAX_MIXER_S / 60} minutes: ` +
    "download the stems to mix them";
  updateClock();
}

// With nothing muted or soloed the mastered mix plays; otherwise the stems do, each audible
// when it is soloed (if any is) or not muted. All sources run together, so switching is seamless.
function applyGains() {
  const player = state.player;
  if (!player || !player.playing) return;
  const anySolo = player.stems.some((s) => s.soloed);
  const anyMute = player.stems.some((s) => s.muted);
  const useMix = !anySolo && !anyMute;
  const now = player.ctx.currentTime;
  player.mixGain.gain.setTargetAtTime(useMix ? 1 : 0, now, 0.01);
  for (const stem of player.stems) {
    const on = !useMix && (anySolo ? stem.soloed : !stem.muted);
    stem.gain.gain.setTargetAtTime(on ? player.stemScale : 0, now, 0.01);
  }
}

function startPlayback(fromS = null) {
  const player = state.player;
  if (!player || !player.ready) return;
  const offset = fromS !== null ? fromS : (player.offsetS >= player.durationS ? 0 : player.offsetS);
  stopPlayback();
  const ctx = audioContext();
  const when = ctx.currentTime + 0.05;
  const make = (buffer) => {
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    source.connect(gain).connect(ctx.destination);
    player.sources.push(source);
    return { source, gain };
  };
  const mix = make(player.mixBuffer);
  player.mixGain = mix.gain;
  for (const stem of player.stems) stem.gain = make(stem.buffer).gain;
  player.playing = true;
  applyGains();
  for (const source of player.sources) source.start(when, Math.min(offset, source.buffer.duration));
  mix.source.addEventListener("ended", () => {
    if (player.sources.includes(mix.source)) {
      stopPlayback();
      player.offsetS = 0;
      updateClock();
    }
  });
  player.startedAt = when - offset;
  $("play").disabled = true;
  $("halt").disabled = false;
  requestAnimationFrame(tick);
}

function stopPlayback() {
  const player = state.player;
  if (!player || !player.playing) return;
  player.offsetS = player.ctx.currentTime - player.startedAt;
  for (const source of player.sources) {
    try { source.stop(); } catch (error) { /* not started yet */ }
    source.disconnect();
  }
  player.sources = [];
  player.playing = false;
  $("play").disabled = false;
  $("halt").disabled = true;
}

function updateClock() {
  const player = state.player;
  if (!player) return;
  const t = player.playing ? player.ctx.currentTime - player.startedAt : player.offsetS;
  $("clock").textContent = `${fmtTime(t)} / ${fmtTime(player.durationS)}`;
  for (const item of $("chords").children) {
    const on = player.playing && t >= Number(item.dataset.start) && t < Number(item.dataset.end);
    item.classList.toggle("now", on);
  }
}

function tick() {
  updateClock();
  if (state.player && state.player.playing) requestAnimationFrame(tick);
}

// ---- arranging the same take again: bar 1 moved, the tempo tapped -----------------------------
function againTempo() {
  const bpm = Number($("again-tempo").value);
  return bpm >= 30 && bpm <= 300 ? bpm : null;
}

function describeAgain() {
  const again = state.again;
  if (!again) return;
  const bpm = againTempo();
  if (again.count) {
    $("again-info").textContent = `counted in ${again.count.meter}` +
      (bpm ? ` at ${bpm.toFixed(1)} bpm` : "") + ", bar 1 found again";
    return;
  }
  $("again-info").textContent = `bar 1 at ${again.downbeatS.toFixed(2)} s into your take` +
    (bpm ? `, ${bpm.toFixed(1)} bpm` : "");
}

// The rhythm stage's other tempi and meters, likeliest first ("at half the tempo, 62 bpm",
// "in 3/4 at 125 bpm"): a click sets that meter and tempo and lets bar 1 be found again (then
// "Arrange again"); moving bar 1 afterwards keeps the meter and pins the bar line.
function showCounts(counts) {
  const box = $("counts");
  box.replaceChildren();
  const info = state.config && state.config.style_info[$("style").value];
  const plays = counts.filter((c) => !info || info.meters.includes(c.meter)); // the style's meters
  for (const c of plays.slice(0, 3)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reading";
    button.textContent = c.words;
    button.title = `--meter ${c.meter} --tempo ${Number(c.tempo_bpm).toFixed(0)}`;
    button.addEventListener("click", () => {
      if (!state.again) return;
      state.again.count = { meter: c.meter };
      $("again-tempo").value = Number(c.tempo_bpm).toFixed(0);
      describeAgain();
    });
    box.append(button);
  }
  $("counts-row").hidden = box.children.length === 0;
}

// Bar 1 moved by hand or to one of the readings: it is pinned again (in the meter chosen).
function pinBar(downbeatS) {
  const again = state.again;
  if (again.count) {
    again.chosenMeter = again.count.meter; // the meter clicked wins over the upload form's
    again.count = null;
  }
  again.downbeatS = downbeatS;
  describeAgain();
}

// The rhythm stage's other readings of the grid, likeliest first: a click puts bar 1 where one
// of them has it (then "Arrange again").
function showReadings(readings) {
  const box = $("readings");
  box.replaceChildren();
  for (const r of readings.slice(0, 4)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reading";
    button.textContent = r.words;
    button.title = `bar 1 at ${Number(r.downbeat_s).toFixed(2)} s into your take`;
    button.addEventListener("click", () => {
      if (!state.again) return;
      pinBar(Number(r.downbeat_s));
    });
    box.append(button);
  }
  $("readings-row").hidden = box.children.length === 0;
}

function shiftBar(beats) {
  const again = state.again;
  const bpm = againTempo();
  if (!again || !bpm) {
    showError("give a tempo first (type it or tap it) to move bar 1 by beats");
    return;
  }
  showError("");
  const beatS = 60 / bpm;
  let at = again.downbeatS + beats * beatS;
  if (at < 0) at += beatsPerBar() * beatS; // the bar before the take starts: the next one
  pinBar(at);
}

// Tap along: the tempo is the median gap of the last eight taps; a pause of 2 s starts over.
function tap() {
  const again = state.again;
  if (!again) return;
  const now = performance.now() / 1000;
  if (again.taps.length && now - again.taps[again.taps.length - 1] > 2) again.taps = [];
  again.taps.push(now);
  again.taps = again.taps.slice(-8);
  if (again.taps.length >= 2) {
    const gaps = again.taps.slice(1).map((t, i) => t - again.taps[i]).sort((a, b) => a - b);
    const bpm = 60 / gaps[Math.floor(gaps.length / 2)];
    if (bpm >= 30 && bpm <= 300) $("again-tempo").value = bpm.toFixed(1);
  }
  $("tap").textContent = `Tap the tempo (${again.taps.length})`;
  describeAgain();
}

async function arrangeAgain() {
  const job = state.job;
  const again = state.again;
  if (!job || !again) return;
  const bpm = againTempo();
  if (!bpm) {
    showError("give a tempo between 30 and 300 bpm (type it or tap it), then arrange again");
    return;
  }
  const params = new URLSearchParams(jobQuery());
  params.delete("filename");
  if (state.take.firstDownbeatS !== undefined) {
    // Recorded here with the count-in: the take keeps its steady grid, moved to the new bar 1.
    params.set("tempo_bpm", bpm.toFixed(2));
    params.set("first_downbeat_s", again.downbeatS.toFixed(3));
  } else {
    // A memo: a bar starts where bar 1 was moved and the beats still follow the singer's drift;
    // a tempo the user typed or tapped (not the one the take was heard at) goes as well.
    if (again.count) {
      // counted another way (one of the other tempi and meters): that meter and tempo, bar 1
      // found again on them
      params.set("meter", again.count.meter);
      params.set("tempo_bpm", bpm.toFixed(2));
    } else {
      params.set("downbeat_s", again.downbeatS.toFixed(3));
      // bar 1 moved in the meter the take was heard in, unless one was chosen on the page
      if (again.chosenMeter) params.set("meter", again.chosenMeter);
      else if (again.meter && !params.get("meter")) params.set("meter", again.meter);
      if (!again.tempoBpm || Math.abs(bpm - again.tempoBpm) > 0.05) params.set("tempo_bpm", bpm.toFixed(2));
      else params.delete("tempo_bpm");
    }
  }
  startProgress("arranging your take again…");
  const body = await sendInLine(() => fetch(`/api/jobs/${job.id}/again?${params}`,
    { method: "POST" }));
  if (body) pollJob(body.status_url);
}

// ---- wiring ----------------------------------------------------------------------------------
$("record").addEventListener("click", startRecording);
$("stop").addEventListener("click", stopRecording);
$("submit").addEventListener("click", submitTake);
$("cancel-wait").addEventListener("click", () => failJob("you stopped waiting: send it again when you like"));
for (const button of document.querySelectorAll("#again-panel button.shift")) {
  button.addEventListener("click", () => shiftBar(Number(button.dataset.beats)));
}
$("tap").addEventListener("click", tap);
$("again-tempo").addEventListener("input", describeAgain);
$("again").addEventListener("click", arrangeAgain);
$("play").addEventListener("click", () => startPlayback());
$("halt").addEventListener("click", () => { stopPlayback(); updateClock(); });
setUpDropZone();
loadConfig().catch((error) => showError(`cannot reach the hum2band server (${error.message})`));
