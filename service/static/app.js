// Microphone -> /v1/stream (float32 frames) -> translated speech played back, live text shown.
// window.hibiki exposes the session's state for people debugging and for the browser test.
const FRAME = 1920;  // 80 ms at 24 kHz
const $ = (id) => document.getElementById(id);
const state = window.hibiki = { phase: "idle", framesSent: 0, framesReceived: 0, texts: [], final: null, error: null };
let ws, ctx, stream, source, node, playHead = 0, pending = new Float32Array(0);

function setStatus(text) { $("status").textContent = text; }

function streamUrl() {
  const url = new URL("/v1/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const key = new URLSearchParams(location.search).get("auth_id");
  if (key) url.searchParams.set("auth_id", key);
  return url;
}

function play(samples) {
  const buffer = ctx.createBuffer(1, samples.length, 24000);
  buffer.copyToChannel(samples, 0);
  const player = ctx.createBufferSource();
  player.buffer = buffer;
  player.connect(ctx.destination);
  playHead = Math.max(playHead, ctx.currentTime + 0.05);
  player.start(playHead);
  playHead += buffer.duration;
}

function sendAudio(block) {
  const joined = new Float32Array(pending.length + block.length);
  joined.set(pending); joined.set(block, pending.length);
  let offset = 0;
  for (; offset + FRAME <= joined.length; offset += FRAME) {
    ws.send(joined.slice(offset, offset + FRAME).buffer);
    state.framesSent++;
  }
  pending = joined.slice(offset);
}

function stopMicrophone() {
  if (node) { node.port.onmessage = null; node.disconnect(); }
  if (source) source.disconnect();
  if (stream) stream.getTracks().forEach((t) => t.stop());
  node = source = stream = null;
}

function finish(message) {
  stopMicrophone();
  state.phase = "done";
  $("start").disabled = false; $("stop").disabled = true;
  setStatus(message);
}

function onMessage(event) {
  if (event.data instanceof ArrayBuffer) {
    state.framesReceived++;
    play(new Float32Array(event.data));
    return;
  }
  const message = JSON.parse(event.data);
  if (message.type === "ready") {
    state.phase = "streaming";
    setStatus(`Listening (session ${message.session}).`);
  } else if (message.type === "text") {
    state.texts.push(message.text);
    $("live").textContent += message.text;
  } else if (message.type === "final") {
    state.final = message;
    $("live").textContent = message.text;
    $("timing").innerHTML = Object.entries(message.timing)
      .map(([k, v]) => `<tr><td>${k}</td><td>${v ?? "-"}</td></tr>`).join("");
  } else if (message.type === "error") {
    state.error = message;
    $("error").textContent = message.message;
  }
}

async function start() {
  $("start").disabled = true; $("error").textContent = ""; $("live").textContent = ""; $("timing").innerHTML = "";
  Object.assign(state, { phase: "starting", framesSent: 0, framesReceived: 0, texts: [], final: null, error: null });
  try {
    if (!ctx) {
      ctx = new AudioContext({ sampleRate: 24000 });
      await ctx.audioWorklet.addModule("/static/capture.js");
    }
    await ctx.resume();
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  } catch (err) {
    state.error = { kind: "microphone", message: String(err) };
    $("error").textContent = `Microphone unavailable: ${err}`;
    return finish("Stopped.");
  }
  ws = new WebSocket(streamUrl());
  ws.binaryType = "arraybuffer";
  ws.onmessage = onMessage;
  ws.onclose = () => finish(state.error ? "Stopped with an error." : "Done.");
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "start", input_format: "f32", sample_rate: ctx.sampleRate, output_format: "f32" }));
    source = ctx.createMediaStreamSource(stream);
    node = new AudioWorkletNode(ctx, "capture");
    node.port.onmessage = (e) => { if (ws.readyState === WebSocket.OPEN) sendAudio(e.data); };
    source.connect(node);
    $("stop").disabled = false;
  };
}

function stop() {
  $("stop").disabled = true;
  stopMicrophone();
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: "end" }));
    state.phase = "flushing";
    setStatus("Finishing the translation...");
  }
}

$("start").onclick = start;
$("stop").onclick = stop;
