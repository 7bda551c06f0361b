// The client half of the oracle: machinery's own Talos client (pkg/machinery/client),
// configured from the talosconfig hk8s writes, drives simulated nodes through a cluster's
// first steps. Linked into the v1.13 module only: the client's wire behaviour does not
// change between the minors hk8s supports. Prints one JSON object per step.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	"google.golang.org/grpc/codes"
)

func init() {
	extra["drive"] = drive
}

type step struct {
	Step   string `json:"step"`
	Detail any    `json:"detail,omitempty"`
}

func emit(name string, detail any) {
	_ = json.NewEncoder(os.Stdout).Encode(step{Step: name, Detail: detail}) //nolint:errcheck
}

// retry calls fn until it succeeds, answers an error retry says is final, or time runs out.
func retry(ctx context.Context, what string, fn func(context.Context) error, again func(error) bool) error {
	deadline := time.Now().Add(2 * time.Minute)

	for {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(callCtx)

		cancel()

		if err == nil {
			return nil
		}

		if !again(err) || time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}

		time.Sleep(200 * time.Millisecond)
	}
}

func always(error) bool { return true }

func drive(args []string) error {
	flags := flag.NewFlagSet("drive", flag.ContinueOnError)
	talosconfig := flags.String("talosconfig", "", "talosconfig written by hk8s")
	configs := flags.String("configs", "", "comma-separated IP=machine-config-file pairs")
	image := flags.String("upgrade-image", "", "installer image for Upgrade")

	if err := flags.Parse(args); err != nil {
		return err
	}

	ctx := context.Background()

	var nodes []string

	// 1. Maintenance mode: the node's self-signed certificate, no client certificate.
	for _, pair := range strings.Split(*configs, ",") {
		ip, file, _ := strings.Cut(pair, "=")

		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}

		insecure, err := client.New(ctx, client.WithEndpoints(ip),
			client.WithTLSConfig(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec
		if err != nil {
			return err
		}

		var reply *machine.ApplyConfigurationResponse

		err = retry(ctx, "maintenance apply to "+ip, func(ctx context.Context) error {
			reply, err = insecure.ApplyConfiguration(ctx, &machine.ApplyConfigurationRequest{
				Data: data, Mode: machine.ApplyConfigurationRequest_AUTO,
			})

			return err
		}, always)

		insecure.Close() //nolint:errcheck

		if err != nil {
			return err
		}

		emit("apply", map[string]string{"node": ip, "mode": reply.Messages[0].Mode.String()})

		nodes = append(nodes, ip)
	}

	// 2. mTLS from the talosconfig hk8s wrote (endpoints, CA, client certificate).
	cfg, err := clientconfig.Open(*talosconfig)
	if err != nil {
		return err
	}

	c, err := client.New(ctx, client.WithConfig(cfg))
	if err != nil {
		return err
	}
	defer c.Close() //nolint:errcheck

	first := nodes[0]
	// One node: `node` metadata (one-to-one, as talosctl -n with one node and upstream's
	// bootstrap code use); several: `nodes` (apid aggregates one message per node).
	on := func(ctx context.Context, ips ...string) context.Context {
		if len(ips) == 1 {
			return client.WithNode(ctx, ips[0])
		}

		return client.WithNodes(ctx, ips...)
	}

	var version *machine.VersionResponse

	if err = retry(ctx, "Version over mTLS", func(ctx context.Context) error {
		version, err = c.Version(on(ctx, first))

		return err
	}, always); err != nil {
		return err
	}

	emit("version", map[string]string{
		"tag": version.Messages[0].Version.Tag, "platform": version.Messages[0].Platform.GetName(),
	})

	// 3. Bootstrap, retried on FailedPrecondition as upstream's pkg/cluster/bootstrap.go does.
	if err = retry(ctx, "Bootstrap", func(ctx context.Context) error {
		return c.Bootstrap(on(ctx, first), &machine.BootstrapRequest{})
	}, func(err error) bool { return client.StatusCode(err) == codes.FailedPrecondition }); err != nil {
		return err
	}

	emit("bootstrap", nil)

	var members *machine.EtcdMemberListResponse

	if err = retry(ctx, "EtcdMemberList", func(ctx context.Context) error {
		members, err = c.EtcdMemberList(on(ctx, first), &machine.EtcdMemberListRequest{})
		if err == nil && len(members.Messages[0].Members) != len(nodes) {
			return errors.New("not every control plane is a member yet")
		}

		return err
	}, always); err != nil {
		return err
	}

	var names []string
	for _, m := range members.Messages[0].Members {
		names = append(names, m.Hostname)
	}

	emit("etcd-members", names)

	kubeconfig, err := c.Kubeconfig(on(ctx, first))
	if err != nil {
		return fmt.Errorf("Kubeconfig: %w", err)
	}

	emit("kubeconfig", string(kubeconfig))

	services, err := c.ServiceList(on(ctx, first))
	if err != nil {
		return fmt.Errorf("ServiceList: %w", err)
	}

	var ids []string
	for _, s := range services.Messages[0].Services {
		ids = append(ids, s.Id)
	}

	emit("services", ids)

	// 4. One call, every node: apid's aggregation through the first control plane.
	all, err := c.Version(on(ctx, nodes...))
	if err != nil {
		return fmt.Errorf("Version on %v: %w", nodes, err)
	}

	var hosts []string
	for _, m := range all.Messages {
		hosts = append(hosts, m.Metadata.GetHostname())
	}

	emit("nodes", hosts)

	// 5. Upgrade the last node (force: a 2-member etcd would refuse), then reboot the first.
	last := nodes[len(nodes)-1]

	upgrade, err := c.UpgradeWithOptions(on(ctx, last), client.WithUpgradeImage(*image), client.WithUpgradeForce(true))
	if err != nil {
		return fmt.Errorf("Upgrade: %w", err)
	}

	emit("upgrade", upgrade.Messages[0].Ack)

	if err = c.Reboot(on(ctx, first)); err != nil {
		return fmt.Errorf("Reboot: %w", err)
	}

	emit("reboot", first)

	return nil
}
