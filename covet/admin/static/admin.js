// Progressive enhancement: foreign-key inputs suggest rows from the model's lookup endpoint.
// Without JavaScript the input still takes a primary key, and "Find" opens the list page.
document.addEventListener("input", async (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || !input.dataset.lookup || !input.list) return;
  const url = input.dataset.lookup + "?q=" + encodeURIComponent(input.value);
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const { results } = await response.json();
  input.list.replaceChildren(
    ...results.map((row) => {
      const option = document.createElement("option");
      option.value = String(row.id);
      option.label = row.text;
      return option;
    }),
  );
});
