// Command talos-oracle runs Talos' own machinery (github.com/siderolabs/talos/pkg/machinery)
// on what hk8s produces, so that tests compare hk8s with upstream rather than with itself.
// One build per supported Talos minor (v1.11/, v1.12/, v1.13/: each a module whose go.mod
// pins that machinery release, with this file linked in); the tests in this directory drive
// it. Subcommands print JSON on stdout; a non-zero exit status means the oracle itself failed.
//
//	validate FILE...          strict configloader.NewFromBytes + Validate in cloud mode
//	load-secrets FILE         secrets.LoadBundle, then configs and a talosconfig from it
//	new-secrets FILE          a bundle from secrets.NewBundle, written as talosctl does
//	generate FLAGS            generate.NewInput(...).Config for both machine types
//	drive FLAGS               machinery's client against simulated nodes (client.go, v1.13)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
	"github.com/siderolabs/talos/pkg/machinery/config/types/v1alpha1"
	"github.com/siderolabs/talos/pkg/machinery/config/validation"
	"gopkg.in/yaml.v3"
)

// cloudMode is Talos' runtime.ModeCloud as config validation sees it
// (internal/app/machined/pkg/runtime/mode.go): hcloud is a cloud platform; the image is
// installed already (RequiresInstall is true only for metal), not in a container.
type cloudMode struct{}

func (cloudMode) String() string        { return "cloud" }
func (cloudMode) RequiresInstall() bool { return false }
func (cloudMode) InContainer() bool     { return false }

var _ validation.RuntimeMode = cloudMode{}

type result struct {
	File     string   `json:"file"`
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings"`
}

func validate(files []string) error {
	results := make([]result, 0, len(files))

	for _, file := range files {
		r := result{File: file, Warnings: []string{}}

		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}

		provider, err := configloader.NewFromBytes(data)
		if err != nil {
			r.Error = "load: " + err.Error()
		} else {
			warnings, verr := provider.Validate(cloudMode{}, validation.WithStrict())
			r.Warnings = append(r.Warnings, warnings...)

			if verr != nil {
				r.Error = "validate: " + verr.Error()
			}
		}

		results = append(results, r)
	}

	return json.NewEncoder(os.Stdout).Encode(results)
}

func loadSecrets(file string) error {
	bundle, err := secrets.LoadBundle(file)
	if err != nil {
		return err
	}

	input, err := generate.NewInput("oracle", "https://127.0.0.1:6443", "1.34.1",
		generate.WithSecretsBundle(bundle))
	if err != nil {
		return err
	}

	for _, kind := range []machine.Type{machine.TypeControlPlane, machine.TypeWorker} {
		if _, err = input.Config(kind); err != nil {
			return fmt.Errorf("config %s from the bundle: %w", kind, err)
		}
	}

	talosconfig, err := input.Talosconfig()
	if err != nil {
		return fmt.Errorf("talosconfig from the bundle: %w", err)
	}

	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"cluster_id": bundle.Cluster.ID,
		"contexts":   len(talosconfig.Contexts),
	})
}

func newSecrets(file, version string) error {
	contract, err := config.ParseContractFromVersion(version)
	if err != nil {
		return err
	}

	bundle, err := secrets.NewBundle(secrets.NewFixedClock(time.Now()), contract)
	if err != nil {
		return err
	}

	// talosctl gen secrets (cmd/talosctl/cmd/mgmt/gen/secrets.go) writes yaml.Marshal(bundle).
	data, err := yaml.Marshal(bundle)
	if err != nil {
		return err
	}

	return os.WriteFile(file, data, 0o600)
}

func generateConfigs(args []string) error {
	flags := flag.NewFlagSet("generate", flag.ContinueOnError)
	secretsFile := flags.String("secrets", "", "secrets bundle")
	name := flags.String("name", "", "cluster name")
	endpoint := flags.String("endpoint", "", "cluster endpoint URL")
	kubernetes := flags.String("kubernetes", "", "Kubernetes version")
	version := flags.String("talos", "", "Talos version (the config contract)")
	image := flags.String("install-image", "", "installer image")
	disk := flags.String("install-disk", "", "install disk")
	sans := flags.String("sans", "", "additional subject alt names, comma-separated")
	cni := flags.String("cni", "", "CNI name (none: installed later)")
	schedule := flags.Bool("allow-scheduling-on-control-planes", false, "no workers")
	out := flags.String("out", "", "output directory")

	if err := flags.Parse(args); err != nil {
		return err
	}

	bundle, err := secrets.LoadBundle(*secretsFile)
	if err != nil {
		return err
	}

	contract, err := config.ParseContractFromVersion(*version)
	if err != nil {
		return err
	}

	options := []generate.Option{
		generate.WithSecretsBundle(bundle),
		generate.WithVersionContract(contract),
		generate.WithInstallImage(*image),
		generate.WithInstallDisk(*disk),
		generate.WithAllowSchedulingOnControlPlanes(*schedule),
	}

	if *sans != "" {
		options = append(options, generate.WithAdditionalSubjectAltNames(strings.Split(*sans, ",")))
	}

	if *cni != "" {
		options = append(options, generate.WithClusterCNIConfig(&v1alpha1.CNIConfig{CNIName: *cni}))
	}

	input, err := generate.NewInput(*name, *endpoint, *kubernetes, options...)
	if err != nil {
		return err
	}

	files := map[string]string{}

	for kind, base := range map[machine.Type]string{
		machine.TypeControlPlane: "controlplane.yaml",
		machine.TypeWorker:       "worker.yaml",
	} {
		provider, err := input.Config(kind)
		if err != nil {
			return err
		}

		data, err := provider.EncodeBytes(encoder.WithComments(encoder.CommentsDisabled))
		if err != nil {
			return err
		}

		path := filepath.Join(*out, base)
		if err = os.WriteFile(path, data, 0o600); err != nil {
			return err
		}

		files[kind.String()] = path
	}

	return json.NewEncoder(os.Stdout).Encode(files)
}

// extra holds subcommands that only some builds link in (client.go: the v1.13 module).
var extra = map[string]func([]string) error{}

func run(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: talos-oracle validate|load-secrets|new-secrets|generate ...")
	}

	switch args[0] {
	case "validate":
		return validate(args[1:])
	case "load-secrets":
		if len(args) != 2 {
			return fmt.Errorf("usage: talos-oracle load-secrets FILE")
		}

		return loadSecrets(args[1])
	case "new-secrets":
		if len(args) != 3 {
			return fmt.Errorf("usage: talos-oracle new-secrets FILE TALOS-VERSION")
		}

		return newSecrets(args[1], args[2])
	case "generate":
		return generateConfigs(args[1:])
	}

	if command, ok := extra[args[0]]; ok {
		return command(args[1:])
	}

	return fmt.Errorf("unknown subcommand %q", args[0])
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "talos-oracle:", err)
		os.Exit(1)
	}
}
