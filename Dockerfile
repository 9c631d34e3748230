# The operator image: the manager, and crm-agent at /crm-agent, which backup
# and restore Jobs copy into the database image (see internal/resources/agentjob.go).
FROM golang:1.26.10 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/manager ./cmd/manager && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/crm-agent ./cmd/crm-agent

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/manager /manager
COPY --from=build /out/crm-agent /crm-agent
USER 65532:65532
ENTRYPOINT ["/manager"]
