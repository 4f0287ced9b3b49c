// The pipeline board: drag a card to another column to change the project's status. Every card also
// has a status select and a button, so the board works without JavaScript and on touch screens; this
// script sends that same form in the background and moves the card. The form carries the version the
// board showed: when a colleague changed the project meanwhile the server refuses (409), the card goes
// to the column of what is saved and says why.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const board = document.querySelector("[data-board]");
  if (!board) return;
  let dragged = null;

  const columnOf = (statusId) =>
    board.querySelector(`.board-column[data-status="${CSS.escape(String(statusId ?? ""))}"]`);

  const recount = () => {
    board.querySelectorAll(".board-column").forEach((column) => {
      const count = column.querySelector("[data-count]");
      const before = Number(column.dataset.shown ?? column.querySelectorAll(".board-card").length);
      const now = column.querySelectorAll(".board-card").length;
      if (count) count.textContent = String(Number(count.textContent) + now - before);
      column.dataset.shown = String(now);
    });
  };
  board.querySelectorAll(".board-column").forEach((column) => {
    column.dataset.shown = String(column.querySelectorAll(".board-card").length);
  });

  // Put the card in the column of ``statusId``; if the board has no such column (filtered out, an
  // inactive status), in ``fallback`` (the column it came from).
  const place = (card, statusId, fallback) => {
    const column = columnOf(statusId) || fallback;
    if (column) column.querySelector(".board-cards").prepend(card);
    recount();
  };

  const showError = (card, message) => {
    const box = card.querySelector(".card-error");
    box.textContent = message;
    box.hidden = !message;
  };

  // Send the card's form (its select says the new status); move the card by the answer.
  const send = async (card, origin) => {
    const form = card.querySelector("form.card-move");
    const select = form.querySelector("select[name=status_id]");
    const version = form.querySelector("input[name=version]");
    card.classList.add("saving");
    showError(card, "");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      let answer = {};
      try { answer = await response.json(); } catch (_error) { answer = {}; }
      if (response.ok) {
        version.value = answer.version;
        if (columnOf(answer.status_id)) place(card, answer.status_id);
        else window.location.reload();  // a status this board shows no column for: show the board anew
      } else if (answer.version !== undefined) {
        // Refused: show what is saved, and base the next move on the version stored now.
        version.value = answer.version;
        select.value = answer.status_id ?? "";
        place(card, answer.status_id, origin);
        showError(card, answer.error || "");
      } else {
        // A session that ended, a project no longer visible: the page itself explains.
        form.submit();
      }
    } catch (_error) {
      form.submit();  // offline or the server away: the plain form reports it
    } finally {
      card.classList.remove("saving");
    }
  };

  board.querySelectorAll(".board-card").forEach((card) => {
    const form = card.querySelector("form.card-move");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(card, card.closest(".board-column"));
    });
    card.addEventListener("dragstart", (event) => {
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.dataset.project);
    });
    card.addEventListener("dragend", () => {
      card.classList.remove("dragging");
      dragged = null;
    });
  });

  board.querySelectorAll(".board-column").forEach((column) => {
    if (column.hasAttribute("data-closed")) return;  // an inactive status takes no new projects
    column.addEventListener("dragover", (event) => {
      if (!dragged) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      column.classList.add("drop-target");
    });
    column.addEventListener("dragleave", (event) => {
      if (!column.contains(event.relatedTarget)) column.classList.remove("drop-target");
    });
    column.addEventListener("drop", (event) => {
      event.preventDefault();
      column.classList.remove("drop-target");
      const card = dragged;
      if (!card || card.closest(".board-column") === column) return;
      const origin = card.closest(".board-column");
      const select = card.querySelector("select[name=status_id]");
      select.value = column.dataset.status;
      place(card, column.dataset.status);  // at once; the answer corrects it if refused
      send(card, origin);
    });
  });
});
