"use strict";
// The cmrclip viewer: upload one study, show LVEF with its interval (and, with a segmenter, the volumetric LVEF,
// the volumes and the contours of every SAX slice), the clips with attention overlays, and the conditions ranked.
// Everything is local; no external resources.
(function () {
  const $ = (id) => document.getElementById(id);

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
  }

  function renderLvef(lvef) {
    if (!lvef) {
      $("lvef-value").textContent = "n/a";
      $("lvef-interval").textContent = "this model does not predict LVEF";
      return;
    }
    $("lvef-value").textContent = lvef.value.toFixed(1) + " %";
    const pct = Math.round(lvef.coverage * 100);
    $("lvef-interval").textContent =
      pct + " % interval: " + lvef.lower.toFixed(1) + " to " + lvef.upper.toFixed(1) + " %";
  }

  const VOLUME_ROWS = [
    ["lvef", "LVEF (contours)", " %"],
    ["edv_ml", "EDV", " mL"],
    ["esv_ml", "ESV", " mL"],
    ["sv_ml", "Stroke volume", " mL"],
    ["lv_mass_g", "LV mass", " g"],
    ["rvedv_ml", "RV EDV", " mL"],
    ["rvesv_ml", "RV ESV", " mL"],
    ["rvef", "RVEF", " %"],
  ];

  function renderVolumes(vol) {
    $("volumes-card").hidden = !vol;
    $("lvef-volumetric").hidden = !vol;
    $("lvef-disagreement").hidden = !(vol && vol.lvef_disagreement);
    if (!vol) return;
    const shown = (v, unit) => (v === null || v === undefined ? "n/a" : v.toFixed(1) + unit);
    $("lvef-volumetric").textContent = "Volumetric (contours): " + shown(vol.lvef, " %");
    const rows = VOLUME_ROWS.map(([key, label, unit]) => {
      const tr = document.createElement("tr");
      tr.append(text("td", label), text("td", shown(vol[key], unit)));
      return tr;
    });
    const frames = document.createElement("tr");
    frames.append(text("td", "ED / ES frame"), text("td", vol.ed_frame + " / " + vol.es_frame));
    $("volumes").querySelector("tbody").replaceChildren(...rows, frames);
    if (vol.lvef_disagreement) {
      $("lvef-disagreement").textContent =
        "The two LVEFs differ by " + Math.abs(vol.lvef_difference).toFixed(1) + " points (more than " +
        vol.lvef_margin + "): check the contours before trusting either.";
    }
  }

  function renderContours(contours) {
    $("contours-section").hidden = !(contours && contours.length);
    const cards = (contours || []).map((c) => {
      const card = document.createElement("div");
      card.className = "clip";
      card.append(text("div", "SAX slice " + c.slice_index), image(c.overlay_gif, "contours of slice " + c.slice_index));
      return card;
    });
    $("contours").replaceChildren(...cards);
  }

  function renderStudy(pred) {
    const input = pred.input ? pred.input + ": " : "";
    $("views-used").textContent = input + "views used: " + pred.views.join(", ") + " (" + pred.n_clips + " clips)";
    const list = $("warnings");
    list.replaceChildren(...pred.warnings.map((w) => text("li", w)));
  }

  function renderConditions(conditions) {
    const body = $("conditions").querySelector("tbody");
    const rows = conditions.map((c) => {
      const tr = document.createElement("tr");
      if (c.positive) tr.className = "positive";
      tr.append(text("td", c.name), text("td", (c.probability * 100).toFixed(1) + " %"));
      const barCell = document.createElement("td");
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = Math.max(1, Math.round(c.probability * 200)) + "px";
      barCell.append(bar);
      tr.append(barCell, text("td", c.positive ? "yes" : "no"));
      return tr;
    });
    body.replaceChildren(...rows);
  }

  function image(src, alt) {
    const img = document.createElement("img");
    img.src = src;
    img.alt = alt;
    return img;
  }

  function renderClips(clips) {
    const cards = (clips || []).map((clip, i) => {
      const card = document.createElement("div");
      card.className = "clip";
      card.dataset.view = clip.view;
      const label = clip.view + (clip.view === "SAX" ? " slice " + clip.slice_index : "");
      card.append(text("div", label + " - MIL weight " + clip.mil_weight.toFixed(2)));
      const pair = document.createElement("div");
      pair.className = "pair";
      pair.append(image(clip.rollout_gif, "attention overlay " + i), image(clip.gradient_gif, "gradient map " + i));
      const captions = document.createElement("div");
      captions.className = "pair muted";
      captions.append(text("span", "attention rollout", "caption"), text("span", "gradient x input", "caption"));
      card.append(pair, captions);
      return card;
    });
    $("clips").replaceChildren(...cards);
  }

  async function submit(event) {
    event.preventDefault();
    const file = $("study-file").files[0];
    if (!file) return;
    $("error").hidden = true;
    $("results").hidden = true;
    $("submit").disabled = true;
    $("status").textContent = "Analysing...";
    const headers = { "Content-Type": "application/octet-stream" };
    const token = $("token").value.trim();
    if (token) headers.Authorization = "Bearer " + token;
    try {
      const response = await fetch("/v1/predict?explain=true&name=" + encodeURIComponent(file.name), { method: "POST", body: file, headers: headers });
      const body = await response.json();
      if (!response.ok) {
        showError("The study was not accepted (" + response.status + "): " + body.error.message);
        return;
      }
      renderLvef(body.prediction.lvef);
      renderVolumes(body.prediction.volumes);
      renderContours(body.contours);
      renderStudy(body.prediction);
      renderConditions(body.prediction.conditions);
      renderClips(body.clips);
      $("results").hidden = false;
      $("status").textContent = "Done.";
    } catch (err) {
      showError("The request failed: " + err.message);
    } finally {
      $("submit").disabled = false;
      if ($("status").textContent === "Analysing...") $("status").textContent = "";
    }
  }

  $("upload-form").addEventListener("submit", submit);
})();
