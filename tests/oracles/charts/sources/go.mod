// The sources of the addon charts test_charts.py judges, at the chart versions hk8s installs by
// default (ADDON_CHARTS): cilium's chart is install/kubernetes/cilium of its module (chart and
// module versions are the same); metrics-server's is charts/metrics-server, tagged apart from
// the chart (the module at v0.8.1 carries chart 3.13.0, at v0.9.1 chart 3.13.1). Nothing here
// is built: `go mod download` fetches them and checks them against go.sum.
module hk8s.dev/oracles/charts/sources

go 1.26.6

require (
	github.com/cilium/cilium v1.20.2
	sigs.k8s.io/metrics-server v0.9.1
)
