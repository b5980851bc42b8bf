// The /graph page: draws the JSON block #hippograph-data with cytoscape.js (inlined
// before this script). Written for hippograph; no other script, no network.
(function () {
  "use strict";
  // The wire form (api/graph_picture.py GraphPicture.wire): node data, and each edge as
  // [source index, target index, type, weight, explicit].
  var wire = JSON.parse(document.getElementById("hippograph-data").textContent);
  var data = {
    nodes: wire.nodes.map(function (d) { return { data: d }; }),
    edges: wire.edges.map(function (e, i) {
      var weight = Math.max(0, Math.min(e[3], 1));
      return {
        data: {
          id: "e" + i,
          source: wire.nodes[e[0]].id,
          target: wire.nodes[e[1]].id,
          type: e[2],
          weight: e[3],
          explicit: e[4] === 1,
          colour: wire.colours[e[2]],
          width: 1 + 5 * weight,
          label: e[2] + " " + e[3].toFixed(2)
        }
      };
    })
  };
  var container = document.getElementById("graph");
  var tip = document.getElementById("tip");
  var edgeLabels = data.edges.length <= 24; // more: on hover only, or they hide the captions
  var byHops = data.nodes.every(function (n) { return typeof n.data.hops === "number"; });

  // Captions are sized in the picture's units, so zooming out to fit shrinks them:
  // `scale` (from 1/zoom, at most 2.5) keeps them readable when the picture is fitted,
  // and nodes and lines grow by its square root.
  function stylesheet(scale) {
    return [
      {
        selector: "node",
        style: {
          "background-color": "data(colour)",
          width: function (n) { return n.data("size") * Math.sqrt(scale); },
          height: function (n) { return n.data("size") * Math.sqrt(scale); },
          "border-width": 1.5,
          "border-color": "#FFFFFF",
          label: "data(label)",
          "font-family": "system-ui, sans-serif",
          "font-size": 13 * scale,
          color: "#2A2C34",
          "text-wrap": "wrap",
          "text-max-width": 160 * scale,
          "text-valign": "bottom",
          "text-margin-y": 4 * scale,
          "text-background-color": "#FFFFFF",
          "text-background-opacity": 0.85,
          "text-background-padding": 2 * scale,
          "text-background-shape": "roundrectangle",
          "min-zoomed-font-size": 0
        }
      },
      { selector: "node[kind = 'entity']", style: { shape: "round-rectangle" } },
      {
        selector: "node[?focus]",
        style: {
          "border-width": 4,
          "border-color": "#1F2430",
          "underlay-color": "#1F2430",
          "underlay-opacity": 0.18,
          "underlay-padding": 9 * scale,
          "underlay-shape": "ellipse",
          "font-weight": "bold",
          "font-size": 14 * scale,
          "z-index": 10
        }
      },
      {
        selector: "edge",
        style: {
          "line-color": "data(colour)",
          "target-arrow-color": "data(colour)",
          "target-arrow-shape": "triangle",
          "arrow-scale": 0.8,
          width: function (e) { return e.data("width") * Math.sqrt(scale); },
          "curve-style": "bezier",
          opacity: 0.85,
          label: edgeLabels ? "data(label)" : "",
          "font-family": "system-ui, sans-serif",
          "font-size": 10 * scale,
          color: "#4A4F5A",
          "text-rotation": "autorotate",
          "text-background-color": "#FFFFFF",
          "text-background-opacity": 0.75,
          "text-background-padding": 1
        }
      },
      { selector: "edge[?explicit]", style: { "line-style": "dashed" } },
      { selector: ".hover", style: { "overlay-color": "#1F2430", "overlay-opacity": 0.12 } },
      { selector: "edge.hover", style: { label: "data(label)", "z-index": 20 } }
    ];
  }

  var cy = cytoscape({
    container: container,
    elements: data,
    wheelSensitivity: 0.3,
    minZoom: 0.05,
    maxZoom: 4,
    style: stylesheet(1)
  });

  // Force-directed, captions counted in the nodes' boxes so they do not overlap. A
  // neighbourhood starts from rings around the focus (by hops), so the picture is the
  // same on every load and the focus stays in the middle.
  if (byHops) {
    var rings = {};
    cy.nodes().forEach(function (n) {
      var hop = n.data("hops");
      (rings[hop] = rings[hop] || []).push(n);
    });
    Object.keys(rings).forEach(function (hop) {
      var ring = rings[hop];
      ring.forEach(function (n, i) {
        // each ring turned by the golden angle, so no two rings line up
        var angle = hop * 2.39996 + (2 * Math.PI * i) / ring.length;
        n.position({ x: hop * 160 * Math.cos(angle), y: hop * 160 * Math.sin(angle) });
      });
    });
  }
  var layout = {
    name: "cose",
    randomize: !byHops,
    nodeDimensionsIncludeLabels: true,
    idealEdgeLength: function () { return 90; },
    nodeRepulsion: function () { return 6000; },
    nodeOverlap: 12,
    componentSpacing: 60,
    numIter: 2000,
    animate: false,
    fit: false
  };

  // Fit everything in view, but never zoom a small picture (depth 1) up to giant nodes.
  // With `rescale`, first choose the caption scale this zoom needs.
  var scale = 1;
  function fit(rescale) {
    cy.resize();
    if (rescale) {
      cy.style(stylesheet(1));
      cy.fit(cy.elements(), 30);
      scale = Math.min(2.5, Math.max(1, 1 / cy.zoom()));
      cy.style(stylesheet(scale));
    }
    cy.fit(cy.elements(), 30);
    if (cy.zoom() > 1.6) {
      cy.zoom(1.6);
      cy.center(cy.elements());
    }
  }

  function run(options) {
    var running = cy.layout(options);
    var stopped = running.promiseOn("layoutstop");
    running.run();
    return stopped;
  }

  // Lay out (captions counted at their smallest), then fit, choosing the caption scale.
  // Stretch the picture (up to 2x along one axis) to the frame's shape: the room a
  // caption needs is mostly sideways, and windows are wider than force layouts are.
  function stretch() {
    var box = cy.nodes().boundingBox({ includeLabels: false });
    var want = container.clientWidth / Math.max(container.clientHeight, 1);
    var have = Math.max(box.w, 1) / Math.max(box.h, 1);
    var kx = Math.min(2, Math.max(1, want / have));
    var ky = Math.min(2, Math.max(1, have / want));
    if (kx < 1.1 && ky < 1.1) return;
    var cx = (box.x1 + box.x2) / 2;
    var cyy = (box.y1 + box.y2) / 2;
    cy.nodes().positions(function (n) {
      var p = n.position();
      return { x: cx + (p.x - cx) * kx, y: cyy + (p.y - cyy) * ky };
    });
  }

  run(layout).then(function () {
    stretch();
    fit(true);
    document.body.setAttribute("data-ready", "true");
  });

  function line(label, value) {
    var row = document.createElement("div");
    var key = document.createElement("b");
    key.textContent = label + ": ";
    row.appendChild(key);
    row.appendChild(document.createTextNode(String(value)));
    return row;
  }

  function describe(element) {
    var d = element.data();
    tip.replaceChildren();
    if (element.isNode()) {
      if (d.kind === "entity") {
        tip.appendChild(line("entity", d.name));
      } else {
        tip.appendChild(line(d.kind, d.content));
        tip.appendChild(line("tier", d.tier));
        tip.appendChild(line("importance", d.importance));
        if (d.session) tip.appendChild(line("session", d.session));
        tip.appendChild(line("occurred", d.occurred_at));
      }
      tip.appendChild(line("id", d.id));
      if (typeof d.hops === "number") tip.appendChild(line("hops from focus", d.hops));
    } else {
      tip.appendChild(line(d.type, d.source + " → " + d.target));
      tip.appendChild(line("weight", d.weight));
      if (d.explicit) tip.appendChild(line("explicit", "yes (a link given on write)"));
    }
  }

  function show(event) {
    describe(event.target);
    var p = event.renderedPosition || event.target.renderedPosition();
    var box = container.getBoundingClientRect();
    tip.hidden = false;
    var x = Math.min(box.left + p.x + 14, window.innerWidth - tip.offsetWidth - 8);
    var y = Math.min(box.top + p.y + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = Math.max(8, x) + "px";
    tip.style.top = Math.max(8, y) + "px";
  }

  cy.on("mouseover tap", "node, edge", function (event) {
    event.target.addClass("hover");
    show(event);
  });
  cy.on("mouseout", "node, edge", function (event) {
    event.target.removeClass("hover");
    tip.hidden = true;
  });
  cy.on("tap", function (event) { if (event.target === cy) tip.hidden = true; });
  document.getElementById("fit").addEventListener("click", function () { fit(false); });
  window.addEventListener("resize", function () { fit(false); });
  window.hippographGraph = cy; // for the browser test and the curious
})();
