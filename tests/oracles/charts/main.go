// Command release-oracle is Helm's own release storage (helm.sh/helm/v3 pkg/storage with its
// Secrets driver, helm 3's default) over an in-memory Kubernetes API (client-go's fake
// clientset): what helm writes when it installs and upgrades, and what it reads back.
//
//	release-oracle write NAMESPACE < releases.json
//	    releases.json: [{"name", "revision", "status", "chart", "chart_version", "app_version"}]
//	    prints the Secrets helm stores for them, as the Kubernetes API serves them (JSON list)
//	release-oracle read NAMESPACE NAME < secrets.json
//	    secrets.json: Secrets as the Kubernetes API serves them (JSON list)
//	    prints what helm reads: the deployed revision of release NAME and its history
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	helmtime "helm.sh/helm/v3/pkg/time"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type revision struct {
	Name         string `json:"name"`
	Revision     int    `json:"revision"`
	Status       string `json:"status"`
	Chart        string `json:"chart"`
	ChartVersion string `json:"chart_version"`
	AppVersion   string `json:"app_version"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: release-oracle write NAMESPACE | read NAMESPACE NAME")
	}
	client := fake.NewSimpleClientset()
	secrets := client.CoreV1().Secrets(args[1])
	store := storage.Init(driver.NewSecrets(secrets))
	switch {
	case args[0] == "write":
		var revisions []revision
		if err := json.NewDecoder(os.Stdin).Decode(&revisions); err != nil {
			return err
		}
		for _, r := range revisions {
			if err := store.Create(&release.Release{
				Name:      r.Name,
				Namespace: args[1],
				Version:   r.Revision,
				Info: &release.Info{
					Status:        release.Status(r.Status),
					FirstDeployed: helmtime.Now(),
					LastDeployed:  helmtime.Now(),
				},
				Chart: &chart.Chart{Metadata: &chart.Metadata{
					APIVersion: chart.APIVersionV2,
					Name:       r.Chart,
					Version:    r.ChartVersion,
					AppVersion: r.AppVersion,
				}},
				Config: map[string]interface{}{},
			}); err != nil {
				return err
			}
		}
		stored, err := secrets.List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i := range stored.Items { // as the API serves them: with their kind
			stored.Items[i].APIVersion, stored.Items[i].Kind = "v1", "Secret"
		}
		return json.NewEncoder(os.Stdout).Encode(stored.Items)
	case args[0] == "read" && len(args) == 3:
		var given []v1.Secret
		if err := json.NewDecoder(os.Stdin).Decode(&given); err != nil {
			return err
		}
		for i := range given {
			if _, err := secrets.Create(context.Background(), &given[i], metav1.CreateOptions{}); err != nil {
				return err
			}
		}
		deployed, err := store.Deployed(args[2])
		if err != nil {
			return err
		}
		history, err := store.History(args[2])
		if err != nil {
			return err
		}
		statuses := map[string]string{}
		for _, r := range history {
			statuses[strconv.Itoa(r.Version)] = r.Info.Status.String()
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
			"name":          deployed.Name,
			"namespace":     deployed.Namespace,
			"revision":      deployed.Version,
			"chart":         deployed.Chart.Metadata.Name,
			"chart_version": deployed.Chart.Metadata.Version,
			"statuses":      statuses,
		})
	}
	return fmt.Errorf("unknown command %q", args[0])
}
