// Start GraphiQL on the page served by covet.graphql (no inline script, so a strict CSP holds).
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var endpoint = root.getAttribute("data-endpoint");
  var csrf = root.getAttribute("data-csrf-token");
  var headers = {};
  if (csrf) {
    headers["X-CSRF-Token"] = csrf;
  }
  var options = { url: endpoint, headers: headers };
  var socket = root.getAttribute("data-subscriptions");
  if (socket && window.graphqlWs) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    options.wsClient = window.graphqlWs.createClient({ url: scheme + window.location.host + socket });
  }
  var fetcher = GraphiQL.createFetcher(options);
  ReactDOM.render(React.createElement(GraphiQL, { fetcher: fetcher }), root);
})();
