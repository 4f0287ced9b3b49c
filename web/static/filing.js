// Filing mail and copying a project's token; progressive: the pages work without it.
document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: [data-copy="element id"] copies that element's text (a project's [P-123] token).
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = button.dataset.done;
      } catch (error) {
        window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy));
      }
    });
  });
  // "Mail → To file": type a relation or project name, pick one, and the e-mail is linked to it.
  const post = document.getElementById("picker-post");
  const labels = document.querySelector("#picker-labels");
  const words = labels ? labels.content.firstElementChild.dataset : {};
  document.querySelectorAll("form[data-file-picker]").forEach((form) => {
    const input = form.querySelector("input[type=search]");
    const list = form.querySelector(".picker-results");
    let timer;
    const pick = (row) => {
      post.action = form.dataset.link;
      post.querySelectorAll("input[name$='_id']").forEach((old) => old.remove());
      const id = document.createElement("input");
      id.type = "hidden"; id.name = row.kind + "_id"; id.value = row.id;
      post.appendChild(id);
      post.submit();
    };
    input.addEventListener("input", () => {
      clearTimeout(timer);
      if (input.value.trim().length < 2) { list.hidden = true; return; }
      timer = setTimeout(async () => {
        const response = await fetch(form.dataset.filePicker + "?q=" + encodeURIComponent(input.value));
        if (!response.ok) return;
        const rows = await response.json();
        list.innerHTML = "";
        rows.forEach((row) => {
          const item = document.createElement("li");
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = row.name + " · " + (words[row.kind] || row.kind) + (row.detail ? " · " + row.detail : "");
          button.addEventListener("click", () => pick(row));
          item.appendChild(button);
          list.appendChild(item);
        });
        if (!rows.length) {
          const item = document.createElement("li");
          item.className = "muted"; item.textContent = words.none || "";
          list.appendChild(item);
        }
        list.hidden = false;
      }, 200);
    });
  });
});
