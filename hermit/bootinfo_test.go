package hermit

import (
	"encoding/binary"
	"testing"
	"time"
)

func TestBootInfoEncode(t *testing.T) {
	boot := time.Date(2026, 8, 1, 12, 0, 0, 123, time.UTC)
	b, err := BootInfo{
		PhysStart: 0x1_0000_0000, PhysEnd: 0x1_0400_0000,
		SerialPortBase: 0x800,
		DeviceTree:     0x1_0000_1000,
		KernelStart:    0x1_0004_0000, KernelEnd: 0x1_000d_c600,
		TLS:        TLS{VAddr: 0x1_000d_06f8, FileSize: 0x20, MemSize: 0x81, Align: 8},
		HasPCI:     true,
		NumCPUs:    2,
		CPUFreqKHz: 2_400_000,
		BootTime:   boot,
	}.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if len(b) != BootInfoSize {
		t.Fatalf("len = %d, want %d", len(b), BootInfoSize)
	}

	le := binary.LittleEndian
	fields := []struct {
		name string
		off  int
		size int
		want uint64
	}{
		{"phys_addr_start", 0, 8, 0x1_0000_0000},
		{"phys_addr_end", 8, 8, 0x1_0400_0000},
		{"serial_port_base", 16, 2, 0x800},
		{"padding after serial_port_base", 18, 6, 0},
		{"device_tree", 24, 8, 0x1_0000_1000},
		{"kernel_image_addr_start", 32, 8, 0x1_0004_0000},
		{"kernel_image_addr_end", 40, 8, 0x1_000d_c600},
		{"tls.start", 48, 8, 0x1_000d_06f8},
		{"tls.filesz", 56, 8, 0x20},
		{"tls.memsz", 64, 8, 0x81},
		{"tls.align", 72, 8, 8},
		{"platform tag", 80, 4, 1},
		{"padding after the tag", 84, 4, 0},
		{"has_pci", 88, 1, 1},
		{"padding after has_pci", 89, 7, 0},
		{"num_cpus", 96, 8, 2},
		{"cpu_freq", 104, 4, 2_400_000},
		{"padding after cpu_freq", 108, 4, 0},
		{"boot_time low", 112, 8, uint64(boot.UnixNano())},
		{"boot_time high", 120, 8, 0},
	}
	for _, f := range fields {
		var got uint64
		for i := f.size - 1; i >= 0; i-- {
			got = got<<8 | uint64(b[f.off+i])
		}
		if got != f.want {
			t.Errorf("%s at %d = %#x, want %#x", f.name, f.off, got, f.want)
		}
	}
	if le.Uint16(b[16:]) != 0x800 {
		t.Errorf("serial port is not little-endian")
	}
}

func TestBootInfoEncodeDefaults(t *testing.T) {
	b, err := BootInfo{PhysStart: 0, PhysEnd: 64 << 20, NumCPUs: 1}.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if b[88] != 0 {
		t.Errorf("has_pci = %d, want 0 when no device is configured", b[88])
	}
	if got := binary.LittleEndian.Uint64(b[112:]); got != 0 {
		t.Errorf("boot_time of the zero Time = %d, want 0", got)
	}
}

func TestBootInfoEncodeNegativeBootTime(t *testing.T) {
	b, err := BootInfo{PhysEnd: 1, NumCPUs: 1, BootTime: time.Unix(-1, 0)}.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if lo, hi := binary.LittleEndian.Uint64(b[112:]), binary.LittleEndian.Uint64(b[120:]); int64(lo) != -1e9 || hi != ^uint64(0) {
		t.Errorf("boot_time = %#x:%#x, want -1e9 sign-extended to 128 bits", hi, lo)
	}
}

func TestBootInfoEncodeRejects(t *testing.T) {
	if _, err := (BootInfo{PhysEnd: 1 << 20}).Encode(); err == nil {
		t.Errorf("Encode with NumCPUs 0 succeeded")
	}
	if _, err := (BootInfo{PhysStart: 1 << 20, PhysEnd: 1 << 20, NumCPUs: 1}).Encode(); err == nil {
		t.Errorf("Encode with an empty RAM range succeeded")
	}
}
