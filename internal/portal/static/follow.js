// Follows a promotion: replaces the progress table with the server's
// fragment every 3 seconds until the increment reaches a final phase.
(function () {
  var box = document.getElementById("progress");
  if (!box) return;
  function tick() {
    fetch(box.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
      box.innerHTML = html;
      var table = box.querySelector("table");
      var phase = document.getElementById("phase");
      if (table && phase) phase.textContent = box.querySelector("strong").textContent;
      // Decided elsewhere (another tab, kubectl): the form goes.
      var form = document.getElementById("decision");
      if (table && form && table.dataset.phase !== "AwaitingAcceptance") form.remove();
      if (!table || table.dataset.final !== "true") setTimeout(tick, 3000);
    }).catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 3000);
})();
