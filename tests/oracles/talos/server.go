// The server half of the oracle: a Talos API server built from Talos' generated API types
// (pkg/machinery/api) with TLS configured as apid configures it (siderolabs/crypto tls.New,
// mutual TLS pinned to the bundle's Talos CA, a server certificate issued from that CA with
// crypto's x509 helpers, client certificates that must carry exactly the client-auth EKU),
// for hk8s' Python client to talk to. Linked into the v1.13 module only.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	stdx509 "crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/siderolabs/crypto/tls"
	"github.com/siderolabs/crypto/x509"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

func init() {
	extra["serve"] = serve
}

// Release is what Version answers.
const Release = "v1.13.9"

type machineServer struct {
	machine.UnimplementedMachineServiceServer

	mu         sync.Mutex
	bootstraps int
}

// roles are the client certificate's Organizations (pkg/grpc/middleware/authz).
func roles(ctx context.Context) []string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}

	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil
	}

	return info.State.PeerCertificates[0].Subject.Organization
}

func require(ctx context.Context, allowed ...string) error {
	for _, role := range roles(ctx) {
		if slices.Contains(allowed, role) {
			return nil
		}
	}

	return grpcstatus.Error(codes.PermissionDenied, "not authorized")
}

// targets is apid's routing metadata: nil means the node itself.
func targets(ctx context.Context) []string {
	md, _ := metadata.FromIncomingContext(ctx)

	return md.Get("nodes")
}

// perNode builds apid's aggregated reply: one message per target, a target named "down"
// reported as apid reports an unreachable node (metadata.error + metadata.status).
func perNode(ctx context.Context, ok func(*common.Metadata) any, failed func(*common.Metadata) any) []any {
	nodes := targets(ctx)
	if len(nodes) == 0 {
		return []any{ok(nil)}
	}

	out := make([]any, 0, len(nodes))

	for _, node := range nodes {
		if node == "down" {
			st := grpcstatus.New(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp down:50000: connect: connection refused"`)
			out = append(out, failed(&common.Metadata{
				Hostname: node,
				Error:    "rpc error: code = Unavailable desc = " + st.Message(),
				Status:   &status.Status{Code: int32(st.Code()), Message: st.Message()},
			}))

			continue
		}

		out = append(out, ok(&common.Metadata{Hostname: node}))
	}

	return out
}

func (s *machineServer) Version(ctx context.Context, _ *emptypb.Empty) (*machine.VersionResponse, error) {
	if err := require(ctx, "os:admin", "os:operator", "os:reader"); err != nil {
		return nil, err
	}

	reply := &machine.VersionResponse{}

	for _, m := range perNode(ctx,
		func(md *common.Metadata) any {
			return &machine.Version{
				Metadata: md,
				Version:  &machine.VersionInfo{Tag: Release, Arch: "amd64", Os: "linux"},
				Platform: &machine.PlatformInfo{Name: "hcloud", Mode: "cloud"},
				Features: &machine.FeaturesInfo{Rbac: true},
			}
		},
		func(md *common.Metadata) any { return &machine.Version{Metadata: md} },
	) {
		reply.Messages = append(reply.Messages, m.(*machine.Version)) //nolint:forcetypeassert
	}

	return reply, nil
}

func (s *machineServer) ServiceList(ctx context.Context, _ *emptypb.Empty) (*machine.ServiceListResponse, error) {
	if err := require(ctx, "os:admin", "os:operator", "os:reader"); err != nil {
		return nil, err
	}

	var services []*machine.ServiceInfo

	for _, id := range []string{"apid", "etcd", "kubelet", "machined", "trustd"} {
		services = append(services, &machine.ServiceInfo{
			Id: id, State: "Running", Health: &machine.ServiceHealth{Healthy: true},
		})
	}

	return &machine.ServiceListResponse{Messages: []*machine.ServiceList{{Services: services}}}, nil
}

// Bootstrap answers as a node that has just booted, then as a bootstrapped one
// (v1alpha1_server.go Bootstrap).
func (s *machineServer) Bootstrap(ctx context.Context, _ *machine.BootstrapRequest) (*machine.BootstrapResponse, error) {
	if err := require(ctx, "os:admin"); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	s.bootstraps++

	switch s.bootstraps {
	case 1:
		return nil, grpcstatus.Error(codes.FailedPrecondition, "time is not in sync yet")
	case 2:
		return &machine.BootstrapResponse{Messages: []*machine.Bootstrap{{}}}, nil
	}

	return nil, grpcstatus.Error(codes.AlreadyExists, "etcd data directory is not empty")
}

// Kubeconfig streams a tar.gz holding the file "kubeconfig", in small chunks.
func (s *machineServer) Kubeconfig(_ *emptypb.Empty, stream grpc.ServerStreamingServer[common.Data]) error {
	if err := require(stream.Context(), "os:admin"); err != nil {
		return err
	}

	var archive bytes.Buffer

	gz := gzip.NewWriter(&archive)
	tw := tar.NewWriter(gz)
	body := []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: oracle\n  cluster: {server: https://203.0.113.10:6443}\n")

	if err := tw.WriteHeader(&tar.Header{Name: "kubeconfig", Mode: 0o600, Size: int64(len(body))}); err != nil {
		return err
	}

	if _, err := tw.Write(body); err != nil {
		return err
	}

	if err := tw.Close(); err != nil {
		return err
	}

	if err := gz.Close(); err != nil {
		return err
	}

	for data := archive.Bytes(); len(data) > 0; {
		n := min(len(data), 64)
		if err := stream.Send(&common.Data{Bytes: data[:n]}); err != nil {
			return err
		}

		data = data[n:]
	}

	return nil
}

// verifyClientEKU is apid's verifyExtKeyUsage (internal/app/apid/service.go).
func verifyClientEKU(_ [][]byte, chains [][]*stdx509.Certificate) error {
	if len(chains) == 0 {
		return errors.New("no verified chains")
	}

	for _, cert := range chains[0] {
		if !cert.IsCA && !slices.Equal(cert.ExtKeyUsage, []stdx509.ExtKeyUsage{stdx509.ExtKeyUsageClientAuth}) {
			return fmt.Errorf("certificate %q is missing the client auth extended key usage", cert.Subject)
		}
	}

	return nil
}

func serve(args []string) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	secretsFile := flags.String("secrets", "", "secrets bundle (its Talos CA)")
	listen := flags.String("listen", "127.0.0.1:0", "address")

	if err := flags.Parse(args); err != nil {
		return err
	}

	bundle, err := secrets.LoadBundle(*secretsFile)
	if err != nil {
		return err
	}

	ca, err := x509.NewCertificateAuthorityFromCertificateAndKey(bundle.Certs.OS)
	if err != nil {
		return err
	}

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return err
	}

	serverCert, err := x509.NewKeyPair(ca,
		x509.IPAddresses([]net.IP{net.ParseIP(host)}),
		x509.CommonName("oracle"),
		x509.NotAfter(time.Now().Add(time.Hour)),
		x509.KeyUsage(stdx509.KeyUsageDigitalSignature),
		x509.ExtKeyUsage([]stdx509.ExtKeyUsage{stdx509.ExtKeyUsageServerAuth}),
	)
	if err != nil {
		return err
	}

	tlsConfig, err := tls.New(
		tls.WithClientAuthType(tls.Mutual),
		tls.WithCACertPEM(bundle.Certs.OS.Crt),
		tls.WithKeypair(*serverCert.Certificate),
	)
	if err != nil {
		return err
	}

	tlsConfig.VerifyPeerCertificate = verifyClientEKU

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}

	server := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsConfig)))
	machine.RegisterMachineServiceServer(server, &machineServer{})

	fmt.Println(listener.Addr().String()) //nolint:forbidigo

	go func() {
		// The test closes stdin to stop the server.
		_, _ = bufio.NewReader(os.Stdin).ReadString(0) //nolint:errcheck
		server.Stop()
	}()

	return server.Serve(listener)
}
