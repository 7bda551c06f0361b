// The sources of the addon charts the simulated world installs with real Helm (and
// tests/oracles/charts judges hk8s' values with), at the chart versions hk8s installs by default
// (ADDON_CHARTS). tools/helm_build.py names each module's chart directory: cilium's is
// install/kubernetes/cilium (chart and module versions are the same); metrics-server's is
// charts/metrics-server, tagged apart from the chart (the module at v0.8.1 carries chart 3.13.0,
// at v0.9.1 chart 3.13.1). Nothing here is built: `go mod download` fetches them and checks them
// against go.sum. The Hetzner charts are in no module the proxy serves.
module hk8s.dev/tools/helm/charts

go 1.26.6

require (
	github.com/cilium/cilium v1.20.2
	sigs.k8s.io/metrics-server v0.9.1
)
