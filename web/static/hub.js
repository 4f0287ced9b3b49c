// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  // Ask before destructive buttons (forms with data-confirm).
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // Relation picker: type to search, choose from the list (uses the JSON search endpoint).
  document.querySelectorAll("[data-relation-picker]").forEach((input) => {
    const hidden = document.getElementById(input.dataset.relationPicker);
    const list = document.getElementById(input.getAttribute("list"));
    let timer;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      const match = Array.from(list.options).find((o) => o.value === input.value);
      if (match) { hidden.value = match.dataset.id; return; }
      hidden.value = "";
      timer = setTimeout(async () => {
        const response = await fetch(input.dataset.url + "?q=" + encodeURIComponent(input.value));
        if (!response.ok) return;
        const rows = await response.json();
        list.innerHTML = "";
        rows.forEach((row) => {
          const option = document.createElement("option");
          option.value = row.name; option.dataset.id = row.id; list.appendChild(option);
          // Typed (or pasted) the exact name: take it without needing a pick from the list.
          if (row.name === input.value) hidden.value = row.id;
        });
      }, 200);
    });
  });
});
